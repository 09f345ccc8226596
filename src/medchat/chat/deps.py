"""Chat's typed Litestar dependencies: the services the runtime built and registered, and who is asking.

Set once on chat's router, so every chat handler (API and pages) reaches the engine one way.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from medchat.auth import Principal
from medchat.chat.answering import ChatEngine
from medchat.chat.limits import ChatLimits
from medchat.chat.model_access import ModelAccess
from medchat.chat.services import ConversationService
from medchat.llm import ModelRegistry
from medchat.platform.registry import registry_of


def provide_engine(state: State) -> ChatEngine:
    """The ``engine`` dependency: the process's one ``ChatEngine``."""
    return registry_of(state).get(ChatEngine)


def provide_conversations(state: State) -> ConversationService:
    """The ``conversations`` dependency: the engine's own ``ConversationService``."""
    return registry_of(state).get(ConversationService)


def provide_limits(engine: NamedDependency[ChatEngine]) -> ChatLimits | None:
    """The ``limits`` dependency: the per-user budgets, None when the engine runs without them."""
    return engine.limits


def provide_model_access(state: State) -> ModelAccess:
    """The ``model_access`` dependency: the offered models (``llm``'s registry) under the role rules."""
    return ModelAccess(registry_of(state).get(ModelRegistry))


def provide_caller(request: Request[Any, Any, Any]) -> Principal:
    """The ``caller`` dependency: ``request.user`` once ``require_user`` has let the request in."""
    return request.user


dependencies = {
    "engine": Provide(provide_engine, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
    "model_access": Provide(provide_model_access, sync_to_thread=False),
}
"""For chat's router."""

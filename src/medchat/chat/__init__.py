"""Conversations, messages, the provenance graph, the answer pipeline and its safety checks.

Public surface: ``router`` (API + pages), ``document_models``, ``event_handlers`` (user deletion and
export), ``ChatEngine`` (built once per process by the runtime, which gives it the language model, the
passage search and the per-user ``ChatLimits``), and the PHI redaction the composition layer installs
everywhere text leaves the process: ``phi_scrubber`` for logs (``platform.logging.add_scrubber``) and
``redact_phi`` for LLM traces (``llm.build_provider(..., redact=...)``).
"""

from litestar import Router

from medchat.chat.limits import ChatLimits
from medchat.chat.models import Conversation, Message
from medchat.chat.pages import page_handlers
from medchat.chat.pipeline import ChatEngine, PassageSearch, no_passages
from medchat.chat.routes import ChatController
from medchat.chat.safety import redact_phi
from medchat.chat.safety import structlog_scrubber as phi_scrubber
from medchat.chat.services import ConversationService
from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED


async def _delete_user_data(*, user_id: str) -> int:
    return await ConversationService().delete_user_data(user_id)


async def _export_user_data(*, user_id: str) -> dict[str, object]:
    return await ConversationService().export_user_data(user_id)


document_models: list[type] = [Conversation, Message]
event_handlers: dict[str, object] = {
    USER_DELETED: _delete_user_data,
    USER_EXPORT_REQUESTED: _export_user_data,
}

router = Router(path="/", route_handlers=[*page_handlers, ChatController])

__all__ = [
    "ChatEngine",
    "ChatLimits",
    "ConversationService",
    "PassageSearch",
    "document_models",
    "event_handlers",
    "no_passages",
    "phi_scrubber",
    "redact_phi",
    "router",
]

"""Conversations, messages, the provenance graph, the answer pipeline and its safety checks.

Public surface: ``router`` (API + pages), ``document_models``, ``event_handlers`` (user deletion and
export), and ``ChatEngine`` (built once per process by the runtime, which gives it the language model
and the passage search).
"""

from litestar import Router

from medchat.chat.models import Conversation, Message
from medchat.chat.pages import page_handlers
from medchat.chat.pipeline import ChatEngine, PassageSearch, no_passages
from medchat.chat.routes import ChatController
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
    "ConversationService",
    "PassageSearch",
    "document_models",
    "event_handlers",
    "no_passages",
    "router",
]

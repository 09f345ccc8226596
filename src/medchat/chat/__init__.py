"""Conversations, messages, the provenance graph, the answer pipeline and its safety checks.

Public surface: ``router`` (API + pages), ``document_models``, ``ChatEngine`` (built once per process
by the runtime, which gives it the language model, the passage search and the per-user ``ChatLimits``,
and registers it), and the PHI redaction the composition layer installs everywhere text leaves the
process: ``phi_scrubber`` for logs (``platform.logging.add_scrubber``) and ``redact_phi`` for LLM
traces (``llm.build_provider(..., redact=...)``).

What leaves the module is frozen (msgspec structs, frozen dataclasses) or plain data; the Beanie
documents stay inside. ``ChatEngine.delete_owner_data`` and ``ChatEngine.export_owner_data`` (keyword
``user_id``) handle ``USER_DELETED`` and ``USER_EXPORT_REQUESTED``; the runtime subscribes them.
"""

from typing import TYPE_CHECKING

from medchat.chat.model_access import ModelAccessRule
from medchat.chat.models import Conversation, Message
from medchat.chat.safety import redact_phi
from medchat.chat.safety import structlog_scrubber as phi_scrubber
from medchat.platform.lazy import lazy_exports

if TYPE_CHECKING:
    from litestar import Router

    from medchat.chat.answering import ChatEngine
    from medchat.chat.limits import ChatLimits

    router: Router

document_models: list[type] = [Conversation, Message, ModelAccessRule]

__getattr__ = lazy_exports(
    __name__,
    {"ChatEngine": "medchat.chat.answering", "ChatLimits": "medchat.chat.limits", "router": "medchat.chat.web"},
)

__all__ = [
    "ChatEngine",
    "ChatLimits",
    "document_models",
    "phi_scrubber",
    "redact_phi",
    "router",
]

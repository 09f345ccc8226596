"""Text generation behind one interface: a remote OpenAI-compatible service, an optional local model,
or sources-only extractive answers; plus prompts, token accounting and tracing."""

from medchat.llm.cli import model_cli
from medchat.llm.errors import (
    LLMConnectionFailed,
    LLMLocalModelFailed,
    LLMRateLimited,
    LLMRequestRejected,
    LLMStreamInterrupted,
    LLMTimeout,
    LLMUnavailable,
    LLMUpstreamError,
)
from medchat.llm.factory import build_provider
from medchat.llm.install import LocalModelInstallFailed, install_local_model, local_model_status
from medchat.llm.prompts import DEFAULT_SYSTEM_PROMPT
from medchat.llm.tracing import Redactor
from medchat.llm.types import (
    ChatTurn,
    ContextPassage,
    GenerationDone,
    GenerationRequest,
    LLMProvider,
    ProviderKind,
    StreamEvent,
    TextDelta,
    Usage,
)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "ChatTurn",
    "ContextPassage",
    "GenerationDone",
    "GenerationRequest",
    "LLMConnectionFailed",
    "LLMLocalModelFailed",
    "LLMProvider",
    "LLMRateLimited",
    "LLMRequestRejected",
    "LLMStreamInterrupted",
    "LLMTimeout",
    "LLMUnavailable",
    "LLMUpstreamError",
    "LocalModelInstallFailed",
    "ProviderKind",
    "Redactor",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "build_provider",
    "install_local_model",
    "local_model_status",
    "model_cli",
]

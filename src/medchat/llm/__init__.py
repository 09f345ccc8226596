"""Text generation behind one interface: a remote OpenAI-compatible service, an optional local model,
or sources-only extractive answers; plus prompts, token accounting and tracing.

Importing this package loads no model client: ``choose_provider`` decides without one, and
``build_provider`` imports only the provider it builds.
"""

from medchat.llm.cli import model_cli
from medchat.llm.errors import LLMStreamInterrupted, LLMUnavailable
from medchat.llm.factory import (
    LLMConfigurationError,
    ProviderChoice,
    build_provider,
    build_sources_only_provider,
    choose_provider,
)
from medchat.llm.tracing import Redactor
from medchat.llm.types import (
    ChatTurn,
    ContextPassage,
    GenerationDone,
    GenerationRequest,
    LLMProvider,
    TextDelta,
    Usage,
)

__all__ = [
    "ChatTurn",
    "ContextPassage",
    "GenerationDone",
    "GenerationRequest",
    "LLMConfigurationError",
    "LLMProvider",
    "LLMStreamInterrupted",
    "LLMUnavailable",
    "ProviderChoice",
    "Redactor",
    "TextDelta",
    "Usage",
    "build_provider",
    "build_sources_only_provider",
    "choose_provider",
    "model_cli",
]

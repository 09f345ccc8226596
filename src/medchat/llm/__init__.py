"""Text generation behind one interface: a remote OpenAI-compatible service, an optional local model,
or sources-only extractive answers; the registry of the models offered (``build_model_registry``); plus
prompts, token accounting and tracing.

Importing this package loads no model client: ``choose_provider`` decides without one, and
``build_provider`` imports only the provider it builds.
"""

from medchat.llm.cli import model_cli
from medchat.llm.errors import LLMStreamInterrupted, LLMUnavailable
from medchat.llm.factory import (
    LLMConfigurationError,
    ProviderChoice,
    build_provider,
    choose_provider,
)
from medchat.llm.registry import (
    DEFAULT_MODEL_NAME,
    SOURCES_ONLY_MODEL_NAME,
    ModelRegistry,
    OfferedModel,
    build_model_registry,
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
    "DEFAULT_MODEL_NAME",
    "SOURCES_ONLY_MODEL_NAME",
    "ChatTurn",
    "ContextPassage",
    "GenerationDone",
    "GenerationRequest",
    "LLMConfigurationError",
    "LLMProvider",
    "LLMStreamInterrupted",
    "LLMUnavailable",
    "ModelRegistry",
    "OfferedModel",
    "ProviderChoice",
    "Redactor",
    "TextDelta",
    "Usage",
    "build_model_registry",
    "build_provider",
    "choose_provider",
    "model_cli",
]

"""Pick the provider the settings call for."""

from __future__ import annotations

from medchat.llm.local import LocalProvider, find_local_model
from medchat.llm.remote import RemoteProvider
from medchat.llm.sources_only import SourcesOnlyProvider
from medchat.llm.tracing import Redactor, make_tracer
from medchat.llm.types import LLMProvider
from medchat.settings import Settings


def build_provider(settings: Settings, *, redact: Redactor | None = None) -> LLMProvider:
    """Remote when an API key is set; else the local model when installed; else sources-only.

    ``redact`` is applied to every text sent to LangSmith (when tracing is on).
    """
    tracer = make_tracer(redact=redact)
    if settings.llm_api_key:
        return RemoteProvider.from_settings(settings, tracer=tracer)
    model_path = find_local_model()
    if model_path is not None:
        return LocalProvider(
            model_path,
            max_output_tokens=settings.llm_max_output_tokens,
            context_tokens=settings.llm_context_tokens,
            tracer=tracer,
        )
    return SourcesOnlyProvider()

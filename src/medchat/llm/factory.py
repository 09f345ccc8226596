"""Pick the provider the settings call for."""

from __future__ import annotations

from medchat.llm.local import LocalProvider, find_local_model
from medchat.llm.remote import RemoteProvider
from medchat.llm.sources_only import SourcesOnlyProvider
from medchat.llm.tracing import Redactor, make_tracer
from medchat.llm.types import LLMProvider
from medchat.settings import Settings, SettingsError


class LLMConfigurationError(SettingsError):
    """The configured provider cannot be built; the message tells the operator what to set or run."""


def build_provider(settings: Settings, *, redact: Redactor | None = None) -> LLMProvider:
    """The provider ``settings.llm_provider`` names; ``auto``: remote when an API key is set, else the
    local model when installed, else sources-only.

    ``redact`` is applied to every text sent to LangSmith (when tracing is on).
    """
    tracer = make_tracer(redact=redact)
    choice = settings.llm_provider
    if choice == "sources-only":
        return SourcesOnlyProvider()
    if choice == "remote" or (choice == "auto" and settings.llm_api_key):
        if not settings.llm_api_key:
            raise LLMConfigurationError("MEDCHAT_LLM_PROVIDER=remote needs MEDCHAT_LLM_API_KEY")
        return RemoteProvider.from_settings(settings, tracer=tracer)
    model_path = find_local_model()
    if choice == "local" and model_path is None:
        raise LLMConfigurationError(
            "MEDCHAT_LLM_PROVIDER=local needs the local model: run `medchat model install-local`"
        )
    if model_path is not None:
        return LocalProvider(
            model_path,
            max_output_tokens=settings.llm_max_output_tokens,
            context_tokens=settings.llm_context_tokens,
            tracer=tracer,
        )
    return SourcesOnlyProvider()

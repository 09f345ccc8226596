"""Pick the provider the settings call for: ``choose_provider`` decides, ``build_provider`` builds that.

The decision is the one place that reads ``MEDCHAT_LLM_PROVIDER``, the API key and whether the local
model is installed. ``medchat serve`` (before it starts granian) and ``medchat doctor`` ask it; every web
or worker process builds what it decides. So doctor reports the provider serve runs.

Deciding imports no model client: each provider's module is imported when that provider is built
(the remote one loads ``openai``, the local one ``langchain_core`` for its prompts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medchat.llm.discovery import find_local_model
from medchat.llm.sources_only import SentenceEmbedder, SourcesOnlyProvider
from medchat.llm.tracing import Redactor, make_tracer
from medchat.llm.types import LLMProvider, ProviderKind
from medchat.settings import Settings, SettingsError


class LLMConfigurationError(SettingsError):
    """The configured provider cannot be built; the message tells the operator what to set or run."""


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    kind: ProviderKind
    reason: str
    """Why this provider, for the operator (``medchat doctor``)."""
    local_model: Path | None = None


def choose_provider(settings: Settings) -> ProviderChoice:
    """The provider ``settings.llm_provider`` names; ``auto``: remote when an API key is set, else the
    local model when installed, else sources-only. Raises ``LLMConfigurationError`` for a choice that
    cannot be met."""
    choice = settings.llm_provider
    if choice == "sources-only":
        return ProviderChoice("sources-only", "MEDCHAT_LLM_PROVIDER=sources-only")
    if choice == "remote" or (choice == "auto" and settings.llm_api_key):
        if not settings.llm_api_key:
            raise LLMConfigurationError("MEDCHAT_LLM_PROVIDER=remote needs MEDCHAT_LLM_API_KEY")
        return ProviderChoice("remote", f"MEDCHAT_LLM_PROVIDER={choice}, MEDCHAT_LLM_API_KEY set")
    model_path = find_local_model()
    if model_path is not None:
        return ProviderChoice("local", f"MEDCHAT_LLM_PROVIDER={choice}, model installed", local_model=model_path)
    if choice == "local":
        raise LLMConfigurationError(
            "MEDCHAT_LLM_PROVIDER=local needs the local model: run `medchat model install-local`"
        )
    return ProviderChoice("sources-only", "no MEDCHAT_LLM_API_KEY and no local model installed")


def build_provider(
    settings: Settings, *, redact: Redactor | None = None, embed: SentenceEmbedder | None = None
) -> LLMProvider:
    """The provider ``choose_provider`` decides on.

    ``redact`` is applied to every text sent to LangSmith (when tracing is on).
    """
    choice = choose_provider(settings)
    tracer = make_tracer(redact=redact)
    if choice.kind == "remote":
        from medchat.llm.remote import RemoteProvider

        return RemoteProvider.from_settings(settings, tracer=tracer)
    if choice.kind == "local" and choice.local_model is not None:
        from medchat.llm.local import LocalProvider

        return LocalProvider(
            choice.local_model,
            max_output_tokens=settings.llm_max_output_tokens,
            context_tokens=settings.llm_context_tokens,
            tracer=tracer,
        )
    return SourcesOnlyProvider(embed=embed)

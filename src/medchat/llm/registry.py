"""The models medchat offers, once: the chat's picker and the OpenAI-compatible ``/v1`` both list this.

Each offered model has a stable public name, a human label, its provider kind and the provider that
answers with it:

- ``medchat``: the configured model (``MEDCHAT_LLM_MODEL`` on the remote service; else the local model when
  installed; else sources-only), the default;
- ``medchat/<model id>``: each further id of ``MEDCHAT_LLM_MODELS`` on the same remote service (one HTTP
  client shared by all of them);
- ``medchat-sources-only``: answers quoted from the sources, no model; always offered.

Who may use which is the chat module's business (its role rules); this is only what exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from medchat.llm.factory import build_provider
from medchat.llm.sources_only import SentenceEmbedder, SourcesOnlyProvider
from medchat.llm.tracing import Redactor
from medchat.llm.types import LLMProvider, ProviderKind
from medchat.settings import Settings

DEFAULT_MODEL_NAME = "medchat"
"""The configured model, with retrieval."""
SOURCES_ONLY_MODEL_NAME = "medchat-sources-only"
"""Answers quoted from the sources; no model runs."""
FURTHER_MODEL_PREFIX = "medchat/"
"""``medchat/<model id>``: a further model of ``MEDCHAT_LLM_MODELS``."""
SOURCES_ONLY_CHOICE_LABEL = "Sources only — quoted passages, no language model"
"""The sources-only label when a model is configured besides (its own label says none is)."""


@dataclass(frozen=True, slots=True)
class OfferedModel:
    name: str
    """Stable public name: what clients send and what the rules are stored under."""
    label: str
    """Human text for pickers and for the answer's label (the provider's own label)."""
    kind: ProviderKind
    provider: LLMProvider
    is_default: bool = False

    @property
    def model_id(self) -> str:
        """What the provider calls the model (the remote id, ``sources-only``, the local model's name)."""
        return self.provider.model


class ModelRegistry:
    """The offered models, default first, sources-only last."""

    def __init__(self, models: Sequence[OfferedModel]) -> None:
        if not models or sum(model.is_default for model in models) != 1:
            raise ValueError("a model registry needs models, exactly one of them the default")
        self._models = {model.name: model for model in models}
        if len(self._models) != len(models):
            raise ValueError("offered model names must be unique")

    def __iter__(self) -> Iterator[OfferedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    @property
    def names(self) -> list[str]:
        return list(self._models)

    @property
    def default(self) -> OfferedModel:
        return next(model for model in self._models.values() if model.is_default)

    @property
    def sources_only(self) -> OfferedModel | None:
        return self._models.get(SOURCES_ONLY_MODEL_NAME)

    def get(self, name: str) -> OfferedModel | None:
        return self._models.get(name)

    async def aclose(self) -> None:
        closed: set[int] = set()
        for model in self._models.values():
            if id(model.provider) not in closed:
                closed.add(id(model.provider))
                await model.provider.aclose()


def build_model_registry(
    settings: Settings, *, redact: Redactor | None = None, embed: SentenceEmbedder | None = None
) -> ModelRegistry:
    """The models ``settings`` configure. ``redact`` and ``embed`` as for ``build_provider``."""
    default = build_provider(settings, redact=redact, embed=embed)
    offered = [OfferedModel(DEFAULT_MODEL_NAME, default.label, default.kind, default, is_default=True)]
    if default.kind == "remote":
        from medchat.llm.remote import RemoteProvider

        assert isinstance(default, RemoteProvider)
        for model_id in settings.offered_llm_models:
            if model_id != default.model:
                further = default.with_model(model_id)
                offered.append(OfferedModel(FURTHER_MODEL_PREFIX + model_id, further.label, "remote", further))
    sources_only: LLMProvider = (
        default if default.kind == "sources-only" else SourcesOnlyProvider(embed, label=SOURCES_ONLY_CHOICE_LABEL)
    )
    offered.append(OfferedModel(SOURCES_ONLY_MODEL_NAME, sources_only.label, "sources-only", sources_only))
    return ModelRegistry(offered)

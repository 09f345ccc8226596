"""The models ``/v1`` offers, each a name for one of the engine's providers."""

from __future__ import annotations

from medchat.chat.answering import ChatEngine
from medchat.llm import LLMProvider
from medchat.platform.errors import NotFound

DEFAULT_MODEL = "medchat"
"""The configured model (remote, local, or sources-only when none is configured), with retrieval."""
SOURCES_ONLY_MODEL = "medchat-sources-only"
"""Answers quoted from the sources; no model runs."""
OWNER = "medchat"


class ModelNotFound(NotFound):
    code = "model_not_found"
    title = "No such model"


def offered_models(engine: ChatEngine) -> dict[str, LLMProvider]:
    """Model name -> provider, in listing order.

    Each further configured model would be offered as ``medchat/<model>``; medchat configures one model
    today (``MEDCHAT_LLM_MODEL``), offered as ``medchat``, so there are none.
    """
    offered = {DEFAULT_MODEL: engine.provider}
    if engine.sources_only is not None:
        offered[SOURCES_ONLY_MODEL] = engine.sources_only
    return offered


def provider_for(engine: ChatEngine, model: str) -> LLMProvider:
    """The provider ``model`` names; 404 ``model_not_found`` for any other name."""
    provider = offered_models(engine).get(model)
    if provider is None:
        names = ", ".join(offered_models(engine))
        raise ModelNotFound(f"The model '{model}' does not exist; the models are: {names}.")
    return provider

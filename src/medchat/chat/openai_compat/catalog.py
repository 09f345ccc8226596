"""The models ``/v1`` offers: ``llm``'s model registry as the key owner's role may use it (``ModelAccess``).

``medchat`` is the configured default model, ``medchat/<model>`` each further model of
``MEDCHAT_LLM_MODELS``, ``medchat-sources-only`` answers quoted from the sources. A model the owner may not
use is not listed, and naming it is answered like an unknown model (404 ``model_not_found``).
"""

from __future__ import annotations

from medchat.chat.model_access import ModelAccess
from medchat.llm import DEFAULT_MODEL_NAME, SOURCES_ONLY_MODEL_NAME, LLMProvider
from medchat.platform.errors import NotFound
from medchat.platform.identity import Principal

DEFAULT_MODEL = DEFAULT_MODEL_NAME
SOURCES_ONLY_MODEL = SOURCES_ONLY_MODEL_NAME
OWNER = "medchat"


class ModelNotFound(NotFound):
    code = "model_not_found"
    title = "No such model"


async def offered_models(access: ModelAccess, caller: Principal) -> list[str]:
    """The names ``caller`` may use, in listing order (the default first)."""
    return [model.name for model in await access.allowed(caller)]


async def provider_for(access: ModelAccess, caller: Principal, model: str) -> LLMProvider:
    """The provider ``model`` names; 404 ``model_not_found`` for any name the caller may not use."""
    names = await offered_models(access, caller)
    if model not in names:
        raise ModelNotFound(f"The model '{model}' does not exist; the models are: {', '.join(names)}.")
    return (await access.choose(caller, model)).provider

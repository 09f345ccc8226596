"""The OpenAI-compatible endpoint ``/v1`` (``GET /v1/models``, ``POST /v1/chat/completions``) over the chat's
answer pipeline, for clients built on OpenAI's SDKs; personal API keys only (``medchat.auth.require_api_key``).

``routes`` is the controller, ``schemas`` OpenAI's request and response shapes, ``catalog`` the models
offered, ``translate`` the pipeline's events as OpenAI's objects, ``errors`` every failure as OpenAI's error
object. The chat router mounts ``OpenAIController``.
"""

from medchat.chat.openai_compat.routes import OpenAIController

__all__ = ["OpenAIController"]

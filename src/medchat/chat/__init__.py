"""Conversations, messages, the provenance graph, the answer pipeline and its safety checks."""

from litestar import Router

from medchat.chat.pages import home_page

document_models: list[type] = []
event_handlers: dict[str, object] = {}

router = Router(path="/", route_handlers=[home_page])

__all__ = ["document_models", "event_handlers", "router"]

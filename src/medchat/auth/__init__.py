"""Accounts: users, password hashing, tokens and sessions, and the guards every module uses."""

from litestar import Router

document_models: list[type] = []
event_handlers: dict[str, object] = {}

router = Router(path="/", route_handlers=[])

__all__ = ["document_models", "event_handlers", "router"]

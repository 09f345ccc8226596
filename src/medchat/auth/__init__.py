"""Accounts: users, password hashing, tokens and sessions, and the guards every module uses."""

from litestar import Router

document_models: list[type] = []

router = Router(path="/", route_handlers=[])

__all__ = ["document_models", "router"]

"""Small facts about the current request that several modules need."""

from __future__ import annotations

from typing import Any

from litestar import Request


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    """The peer address as the server saw it (behind Traefik, configure it to forward the client's)."""
    return request.client.host if request.client else None

"""Who is calling: ``Principal`` (the value of ``request.user``) and the guards every module puts on routes.

It lives in the platform because every module needs it while only ``auth`` knows how to establish it:
auth's middleware puts a ``Principal`` in ``request.user``; retrieval and chat only read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from medchat.platform.errors import Forbidden, Unauthorized

ANONYMOUS_REASON = "auth_failure"
"""Scope key where the middleware leaves why presented credentials were refused (e.g. an expired token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user of a request. Built fresh from the database on every request."""

    id: str
    email: str
    full_name: str
    role: Literal["user", "admin"]
    api_key_id: str | None = None
    """The personal API key the request was authenticated with (``/v1/`` only); None for sessions and JWTs."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """``request.user`` without raising on routes the authentication middleware skipped (static files, 404s)."""
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The signed-in user, or ``Unauthorized`` (401 for the API, a redirect to /login for pages).

    Installed as the app-wide dependency ``current_user``: a handler that declares
    ``current_user: Principal`` is protected by that alone.
    """
    principal = principal_of(connection)
    if principal is None:
        reason = connection.scope.get(ANONYMOUS_REASON)
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'} if reason else {}
        raise Unauthorized(reason or "Sign in to continue.", headers=headers)
    return principal


def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 unless signed in."""
    current_user(connection)


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 unless signed in, 403 ``forbidden`` unless an admin."""
    if not current_user(connection).is_admin:
        raise Forbidden("This needs an administrator.")

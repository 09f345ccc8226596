"""Who is asking on ``/v1/``: only a personal API key counts there, and ``require_api_key`` guards it.

The middleware (``authenticate_api_key``) never refuses: it leaves ``request.user`` None, and why, for the
guard. The guard raises Litestar's exceptions, which the ``/v1`` routes turn into OpenAI's error shape.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from medchat.auth.guards import ANONYMOUS_REASON, Principal, principal_of
from medchat.auth.rules import AccountDisabled
from medchat.auth.services import Accounts
from medchat.platform.errors import RateLimited
from medchat.platform.registry import registry_of

API_KEY_PREFIX = "/v1/"
OWNER_DISABLED = "api_key_owner_disabled"
"""Scope key the middleware sets when a good key's owner is disabled: the guard answers 403, not 401."""
_MISSING = "Send a personal API key as 'Authorization: Bearer mck_...'; create one on your profile page."
_INVALID = "The API key is invalid, expired or revoked."


def is_api_key_path(path: str) -> bool:
    return path.startswith(API_KEY_PREFIX) or path == API_KEY_PREFIX.rstrip("/")


async def authenticate_api_key(connection: ASGIConnection[Any, Any, Any, Any], accounts: Accounts) -> Principal | None:
    """The ``Principal`` a ``/v1/`` request's bearer API key names, or None (sessions and JWTs are ignored)."""
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    principal = None
    if scheme.lower() == "bearer" and key.strip():
        try:
            principal = await accounts.principal_from_api_key(key.strip())
        except AccountDisabled as disabled:
            connection.scope[OWNER_DISABLED] = disabled.detail  # type: ignore[literal-required]
            return None
    if principal is None:
        connection.scope[ANONYMOUS_REASON] = _INVALID  # type: ignore[literal-required]
    return principal


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for ``/v1/`` routes: 401 without a valid personal API key, 403 when its owner is disabled,
    429 (with ``Retry-After``) past the key's ``api_key_requests_per_minute``."""
    if disabled := connection.scope.get(OWNER_DISABLED):
        raise PermissionDeniedException(disabled)
    principal = principal_of(connection)
    if principal is None or principal.api_key_id is None:
        reason = connection.scope.get(ANONYMOUS_REASON) or _MISSING
        raise NotAuthorizedException(reason, headers={"WWW-Authenticate": 'Bearer realm="medchat"'})
    try:
        await registry_of(connection.app.state).get(Accounts).count_api_key_request(principal.api_key_id)
    except RateLimited as limited:
        raise TooManyRequestsException(limited.detail, headers=limited.headers) from None

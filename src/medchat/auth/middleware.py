"""Who is asking: a bearer token (API), an API key (``/v1/``) or the session cookie (pages) becomes
``request.user``.

The middleware never refuses a request: anonymous ones reach public routes with ``request.user`` None,
and the guards (``require_user``, ``require_admin``, the ``current_user`` dependency) answer 401/403.
The session cookie counts only outside ``/api/``: the API is exempt from CSRF checks, so it must not
accept the ambient credential a browser sends by itself.
On ``/v1/`` (the OpenAI-compatible API) only a personal API key counts (``api_key_access``), and an API
key counts nowhere else.
"""

from __future__ import annotations

from typing import Any

from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.plugins import InitPluginProtocol

from medchat.auth.api_key_access import API_KEY_PREFIX, authenticate_api_key, is_api_key_path
from medchat.auth.csrf import CSRF_COOKIE, SessionBoundCSRFMiddleware, csrf_key
from medchat.auth.deps import provide_current_user
from medchat.auth.guards import ANONYMOUS_REASON
from medchat.auth.services import Accounts
from medchat.auth.sessions import SESSION_COOKIE
from medchat.platform.registry import registry_of
from medchat.settings import Settings

API_PREFIX = "/api/"
NOT_AUTHENTICATED = ["^/static/", "^/ping$", "^/healthz$", "^/readyz$", "^/metrics", "^/schema", "^/swagger"]
"""Paths that never need a user: skipping them saves a Redis and a MongoDB read per static file."""


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        accounts = registry_of(connection.app.state).get(Accounts)
        if is_api_key_path(connection.scope["path"]):
            return AuthenticationResult(user=await authenticate_api_key(connection, accounts), auth=None)
        header = connection.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            principal = None
            if scheme.lower() == "bearer" and token.strip():
                principal = await accounts.principal_from_access_token(token.strip())
            if principal is None:
                connection.scope[ANONYMOUS_REASON] = "The access token is invalid, expired or revoked."  # type: ignore[literal-required]
            return AuthenticationResult(user=principal, auth=None)
        secret = connection.cookies.get(SESSION_COOKIE)
        if secret and not connection.scope["path"].startswith(API_PREFIX):
            return AuthenticationResult(user=await accounts.principal_from_session(secret), auth=None)
        return AuthenticationResult(user=None, auth=None)


class AuthPlugin(InitPluginProtocol):
    """Installs authentication, CSRF protection for forms (bound to the session: ``csrf``) and the
    ``current_user`` dependency on the app.

    The middleware finds ``Accounts`` in the runtime's service registry (``app.state``, set by the lifespan).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(
            DefineMiddleware(
                AuthenticationMiddleware,
                exclude=NOT_AUTHENTICATED,
                # Routes marked ``exclude_from_auth`` (the public home page) still learn who is asking.
                exclude_from_auth_key="skip_authentication",
            )
        )
        # After authentication: the token is checked against the session the request presents.
        csrf = CSRFConfig(
            secret=csrf_key(self.settings.signing_key),
            cookie_name=CSRF_COOKIE,
            cookie_secure=self.settings.secure_cookies,
            cookie_httponly=True,  # pages carry the token in the form and in hx-headers; scripts never read it
            cookie_samesite="lax",
            exclude=[f"^{API_PREFIX}", f"^{API_KEY_PREFIX}"],
        )
        app_config.middleware.append(DefineMiddleware(SessionBoundCSRFMiddleware, config=csrf))
        app_config.dependencies["current_user"] = Provide(provide_current_user, sync_to_thread=False)
        return app_config

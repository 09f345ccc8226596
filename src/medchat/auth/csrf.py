"""CSRF tokens bound to the session: Litestar's double-submit cookie, signed for one session.

Litestar signs every token with one app-wide secret, so any valid cookie-and-token pair passes with any
session: someone who plants their own pair in another person's browser (a sibling subdomain can set
cookies) could post forms as that person. Here a token's signature also covers the SHA-256 of the
session cookie it was issued with (or "anonymous"), and a form post must carry the cookie's token *and*
that token must be signed for the session the request presents.

When a response starts or ends a session (``Set-Cookie: medchat_session``), the CSRF cookie is replaced
by a token for the new session in the same response, so the next form works; a page fetched with a token
of another session gets a fresh one. A page rendered by the response that starts a session (the password
change) calls ``issue_for_session`` first, so its forms carry the new token.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware, generate_csrf_hash
from litestar.utils.scope.state import ScopeState

from medchat.auth.sessions import SESSION_COOKIE
from medchat.auth.tokens import derive_key, digest

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import Message, Receive, Scope, Send

CSRF_COOKIE = "medchat_csrf"


def csrf_key(signing_key: str) -> str:
    return derive_key(signing_key, "csrf")


def token_for(key: str, session: str | None) -> str:
    """A new token for the session whose cookie value is ``session`` (None or empty: no session)."""
    nonce = secrets.token_hex(CSRF_SECRET_LENGTH // 2)
    return nonce + generate_csrf_hash(nonce, _session_key(key, session))


def is_for(token: str | None, key: str, session: str | None) -> bool:
    if not token or len(token) <= CSRF_SECRET_LENGTH:
        return False
    nonce, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
    return hmac.compare_digest(signature, generate_csrf_hash(nonce, _session_key(key, session)))


def issue_for_session(request: Request[Any, Any, Any], *, key: str, session: str) -> None:
    """The page this request renders carries a token for ``session`` (which the response is starting)."""
    ScopeState.from_scope(request.scope).csrf_token = token_for(key, session)


def _session_key(key: str, session: str | None) -> str:
    return f"{key}:{digest(session) if session else 'anonymous'}"


class SessionBoundCSRFMiddleware(CSRFMiddleware):
    """Installed by ``AuthPlugin`` (after authentication) with a ``CSRFConfig``; its ``secret`` is the key."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or should_bypass_middleware(
            scope=scope,
            scopes=self.scopes,
            exclude_opt_key=self.config.exclude_from_csrf_key,
            exclude_path_pattern=self.exclude,
        ):
            await self.app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope=scope, receive=receive)
        session = request.cookies.get(SESSION_COOKIE)
        cookie = request.cookies.get(self.config.cookie_name)
        state = ScopeState.from_scope(scope)
        key = self.config.secret
        if request.method in self.config.safe_methods:
            state.csrf_token = cookie if is_for(cookie, key, session) else token_for(key, session)
        else:
            submitted = request.headers.get(self.config.header_name)
            content_type, _ = request.content_type
            if not submitted and content_type in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
                submitted = (await request.form()).get("_csrf_token")
            if not (
                isinstance(submitted, str)
                and cookie
                and hmac.compare_digest(submitted, cookie)
                and is_for(cookie, key, session)
            ):
                raise PermissionDeniedException("CSRF token verification failed")
            state.csrf_token = submitted
        await self.app(scope, receive, self._keeping_the_cookie_in_step(send, state, cookie))

    def _keeping_the_cookie_in_step(self, send: Send, state: ScopeState, cookie: str | None) -> Send:
        """Set the CSRF cookie to the token the response was rendered with, or to one for the session the
        response starts or ends."""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                token = state.csrf_token
                new_session = _session_set_by(headers.getall("set-cookie", []))
                if new_session is not None and not is_for(token, self.config.secret, new_session):
                    token = token_for(self.config.secret, new_session)
                if isinstance(token, str) and token != cookie:
                    headers.add("set-cookie", self._cookie(token).to_header(header=""))
            await send(message)

        return wrapped

    def _cookie(self, token: str) -> Cookie:
        return Cookie(
            key=self.config.cookie_name,
            value=token,
            path=self.config.cookie_path,
            secure=self.config.cookie_secure,
            httponly=self.config.cookie_httponly,
            samesite=self.config.cookie_samesite,
            domain=self.config.cookie_domain,
        )


def _session_set_by(set_cookies: list[str]) -> str | None:
    """The session cookie value a response sets ("" when it ends the session), or None when it sets none."""
    for header in set_cookies:
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return rest.partition(";")[0].strip().strip('"')
    return None

"""Security headers on every response: a CSP that allows only our own static files, and friends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The interactive API docs load their scripts from a CDN; the docs pages get their own policy.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self' https:; script-src 'self' 'unsafe-inline' https:; style-src 'self' 'unsafe-inline' https:; "
    "img-src 'self' data: https:; frame-ancestors 'none'"
)


def security_headers(*, hsts: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """A ``before_send`` hook: it sees every response, including 404s raised before routing."""

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        is_docs = scope.get("path", "").startswith("/schema")
        policy = DOCS_CONTENT_SECURITY_POLICY if is_docs else CONTENT_SECURITY_POLICY
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), geolocation=(), microphone=(self)")
        if hsts:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")

    return add_headers

"""One access line per HTTP request, and the request's ids on every other line logged while it runs.

The line (INFO, event ``http request``) names the method, the route template (never the raw path: ids
and query strings stay out), the status, the duration, and a keyed hash of the user, so an operator can
follow one user's requests without the logs holding who it is. ``request_id``, ``trace_id`` and
``span_id`` are bound with ``structlog.contextvars`` for the whole request, so every line logged during
it, including those of tasks it starts (``asyncio.create_task`` copies the context), carries them and
joins the trace in Tempo. Probes and static files are logged at DEBUG: they would drown the rest.

Installed in the app's ``middleware`` list, so it runs inside the OpenTelemetry middleware (which
Litestar wraps around the whole router) and the HTTP span is the current span here; and outside the
authentication middleware, so ``scope["user"]`` is set by the time the line is written.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from typing import Any

import structlog
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace

from medchat.platform.identity import Principal

REQUEST_ID_HEADER = "X-Request-ID"
QUIET_PATHS = ("/static/", "/healthz", "/readyz", "/ping", "/metrics")
"""Probes, scrapes and static files: logged at DEBUG only."""
USER_HASH_LENGTH = 16

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""What an incoming ``X-Request-ID`` may be to be kept: a short token (a UUID, a proxy's id), nothing to
inject into a log line."""

log = structlog.get_logger(__name__)


class AccessLogMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, *, secret_key: str) -> None:
        # A key of its own, so the user hashes in logs can't be compared with anything else the secret signs.
        self._user_key = hmac.new(secret_key.encode(), b"medchat:log-user", hashlib.sha256).digest()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = request_id_of(scope)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id, **current_trace_ids())
        status = 500  # what the client gets if an error escapes before a response starts

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                name_span_after_route(scope)  # the span ends with the response's last body message
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        try:
            await next_app(scope, receive, send_with_request_id)
        finally:
            self._log_request(scope, status=status, duration_ms=(time.perf_counter() - started) * 1000)
            structlog.contextvars.reset_contextvars(**bound)

    def _log_request(self, scope: Scope, *, status: int, duration_ms: float) -> None:
        fields: dict[str, Any] = {
            "method": scope.get("method"),
            "route": scope.get("path_template") or "unrouted",
            "status": status,
            "duration_ms": round(duration_ms, 1),
        }
        user = scope.get("user")
        if isinstance(user, Principal):
            fields["user_hash"] = self.user_hash(user.id)
        quiet = scope["path"].startswith(QUIET_PATHS)
        (log.debug if quiet else log.info)("http request", **fields)

    def user_hash(self, user_id: str) -> str:
        """The same user gives the same hash on every line and every process sharing the secret."""
        return hmac.new(self._user_key, user_id.encode(), hashlib.sha256).hexdigest()[:USER_HASH_LENGTH]


def request_id_of(scope: Scope) -> str:
    """The client's (or the proxy's) ``X-Request-ID`` when it is a sane short token, else a new one."""
    incoming = Headers.from_scope(scope).get(REQUEST_ID_HEADER)
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span, as Tempo and Grafana write them; none outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def name_span_after_route(scope: Scope) -> None:
    """Name the HTTP span by its route template (``GET /api/v1/documents/{document_id}``), as tracing UIs group
    by it: the OpenTelemetry middleware named it before routing, from the raw path with its ids."""
    template = scope.get("path_template")
    span = trace.get_current_span()
    if template and span.is_recording():
        span.update_name(f"{scope.get('method')} {template}")
        span.set_attribute("http.route", template)

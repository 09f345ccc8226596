"""Every ``/v1`` failure as OpenAI's error object ``{"error": {message, type, param, code}}``, with the
status and headers (``Retry-After``) medchat gives it; ``code`` is medchat's stable one (API.md), except
``invalid_api_key`` for a missing or bad key."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException

from medchat.chat.openai_compat.schemas import ErrorBody, ErrorOut
from medchat.platform.errors import AppError, RateLimited, Unauthorized
from medchat.platform.problems import as_app_error as platform_error
from medchat.platform.problems import store_failure

log = structlog.get_logger(__name__)

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


def error_out(error: AppError) -> ErrorOut:
    code = "invalid_api_key" if isinstance(error, Unauthorized) else error.code
    param = error.extra.get("param") if isinstance(error.extra.get("param"), str) else None
    return ErrorOut(error=ErrorBody(message=error.detail, type=error_type(error.status), param=param, code=code))


def as_app_error(exc: Exception) -> AppError:
    """medchat's error for whatever a ``/v1`` handler, guard or parser raised: the platform's mapping, except
    that the guard's own message and headers (``Retry-After``) are what an OpenAI client is shown."""
    if isinstance(exc, NotAuthorizedException):
        return Unauthorized(exc.detail, headers=exc.headers)
    if isinstance(exc, TooManyRequestsException):
        return RateLimited(exc.detail, retry_after=int((exc.headers or {}).get("Retry-After", 60)))
    return platform_error(exc)


def handle_openai_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorOut]:
    error = as_app_error(exc)
    if error.status >= 500 and not isinstance(exc, AppError) and store_failure(exc) is None:
        log.exception("unhandled error", path=request.url.path, method=request.method)
    return Response(error_out(error), status_code=error.status, headers=error.headers)


exception_handlers: dict[type[Exception] | int, Any] = {Exception: handle_openai_error}

"""Map every exception to one response: problem+json for the API, a page or redirect for the UI."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import MethodNotAllowedException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_500_INTERNAL_SERVER_ERROR
from pymongo.errors import ConnectionFailure, PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from medchat.platform.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    ClientError,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)

log = structlog.get_logger(__name__)

LOGIN_PATH = "/login"
STORE_RETRY_AFTER_SECONDS = 5

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,  # refused, reset, or still loading its data after a restart
    RedisTimeoutError,
    ConnectionFailure,  # PyMongo's AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
)
"""What a store client raises when its server is down, paused or unreachable: the request may be retried."""


class _MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


def as_app_error(exc: Exception) -> AppError:
    """medchat's error for whatever a handler, guard or parser raised (the framework's, a store client's)."""
    if isinstance(exc, AppError):
        return exc
    if store_failure(exc) is not None:
        return DependencyUnavailable(
            "A data store is not answering. Please try again in a moment.",
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        return ValidationFailed(_validation_detail(exc, errors), errors=errors)
    if isinstance(exc, NotAuthorizedException):
        return Unauthorized(exc.detail if exc.detail != "Unauthorized" else None)
    if isinstance(exc, PermissionDeniedException):
        return Forbidden(exc.detail if exc.detail != "Forbidden" else None)
    if isinstance(exc, NotFoundException):
        return NotFound()
    if isinstance(exc, TooManyRequestsException):
        retry_after = int((exc.headers or {}).get("Retry-After", 60))
        return RateLimited(retry_after=retry_after)
    if isinstance(exc, MethodNotAllowedException):
        return _MethodNotAllowed()
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):
        # msgspec refuses a body nested deeper than the interpreter allows, with this error.
        return ClientError("The request body is nested too deeply.")
    if isinstance(exc, HTTPException) and exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return PayloadTooLarge("The request body is larger than this address accepts.")
    if isinstance(exc, HTTPException) and exc.status_code < HTTP_500_INTERNAL_SERVER_ERROR:
        error = ClientError(exc.detail)
        error.status = exc.status_code  # type: ignore[misc]
        return error
    return ServerError()


def store_failure(exc: BaseException) -> BaseException | None:
    """The store client error behind ``exc`` (itself, or what it was raised from), if there is one."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, STORE_UNAVAILABLE) or (isinstance(current, PyMongoError) and current.timeout):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(cause for cause in (current.__cause__, current.__context__) if cause is not None)
    return None


def _validation_detail(exc: ValidationException, errors: list[Any]) -> str:
    messages = [f"{item.get('key') or 'body'}: {item.get('message')}" for item in errors if isinstance(item, dict)]
    return "; ".join(messages) if messages else str(exc.detail)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = as_app_error(exc)
    if (failure := store_failure(exc)) is not None and not isinstance(exc, AppError):
        # Every request fails alike while a store is down: one line each, no traceback.
        log.warning("store unavailable", path=request.url.path, error=type(failure).__name__, detail=str(failure)[:300])
    elif error.status >= HTTP_500_INTERNAL_SERVER_ERROR and not isinstance(exc, AppError):
        log.exception("unhandled error", path=request.url.path, method=request.method)
    elif error.status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.warning("dependency error", path=request.url.path, code=error.code, detail=error.detail)
    if wants_html(request):
        return _html_error(request, error)
    return Response(
        content=error.to_problem(),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def _html_error(request: Request[Any, Any, Any], error: AppError) -> Response[Any]:
    if isinstance(error, Unauthorized):
        target = f"{LOGIN_PATH}?next={quote(request.url.path)}"
        if request.headers.get("hx-request") == "true":
            return Response(content=None, status_code=204, headers={"HX-Redirect": target})
        return Redirect(path=target)
    is_htmx = request.headers.get("hx-request") == "true"
    response = Template(
        template_name="_error.html" if is_htmx else "error.html",
        context={"error": error},
        status_code=error.status,
        media_type=MediaType.HTML,
        headers=error.headers,
    )
    if is_htmx:
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


exception_handlers: dict[type[Exception] | int, Any] = {Exception: handle_exception}

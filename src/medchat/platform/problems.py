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
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from medchat.platform.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    ClientError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)

log = structlog.get_logger(__name__)

LOGIN_PATH = "/login"


class _MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


def _as_app_error(exc: Exception) -> AppError:
    if isinstance(exc, AppError):
        return exc
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
    if isinstance(exc, HTTPException) and exc.status_code < HTTP_500_INTERNAL_SERVER_ERROR:
        error = ClientError(exc.detail)
        error.status = exc.status_code  # type: ignore[misc]
        return error
    return ServerError()


def _validation_detail(exc: ValidationException, errors: list[Any]) -> str:
    messages = [
        f"{item.get('key') or 'body'}: {item.get('message')}" for item in errors if isinstance(item, dict)
    ]
    return "; ".join(messages) if messages else str(exc.detail)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = _as_app_error(exc)
    if error.status >= HTTP_500_INTERNAL_SERVER_ERROR and not isinstance(exc, AppError):
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

"""One error hierarchy for the whole app, mapped to RFC 9457 problem+json in one place.

Services raise these; handlers never build error responses by hand. ``code`` is the stable,
machine-readable name clients rely on (see the API contract).
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_MEDIA_TYPE = "application/problem+json"


class AppError(Exception):
    """Base of every error a client may see. Subclasses fix ``status``, ``code`` and ``title``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": f"https://medchat.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class ClientError(AppError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class ValidationFailed(ClientError):
    status = 400
    code = "validation_failed"
    title = "Validation failed"


class Unauthorized(ClientError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Invalid credentials"


class Forbidden(ClientError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ClientError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ClientError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class RateLimited(ClientError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after)))}
        super().__init__(detail, headers=headers, retry_after=retry_after, **extra)


class ServerError(AppError):
    status = 500
    code = "internal_error"
    title = "Internal error"


class DependencyUnavailable(ServerError):
    """A store or remote service did not answer; the request can be retried later."""

    status = 503
    code = "dependency_unavailable"
    title = "Service temporarily unavailable"


class LLMUnavailable(DependencyUnavailable):
    code = "llm_unavailable"
    title = "The language model is unavailable"


class Busy(ServerError):
    """Every worker for CPU-heavy work (OCR, speech, parsing) is taken; the request can be sent again shortly."""

    status = 503
    code = "busy"
    title = "Busy, try again shortly"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))}, **extra)

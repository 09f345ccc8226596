"""Why the language model could not answer, as subclasses of the platform's ``LLMUnavailable``.

Every subclass keeps the stable API code ``llm_unavailable``; the finer cause travels in the
problem's ``reason`` member (``rate_limited``, ``timeout``, ``connection``, ``upstream_error``,
``rejected``, ``interrupted``, ``local_model``) so existing clients keep working.
"""

from __future__ import annotations

from typing import Any, ClassVar

from medchat.platform.errors import LLMUnavailable

__all__ = [
    "LLMConnectionFailed",
    "LLMLocalModelFailed",
    "LLMRateLimited",
    "LLMRequestRejected",
    "LLMStreamInterrupted",
    "LLMTimeout",
    "LLMUnavailable",
    "LLMUpstreamError",
]


class _LLMFailure(LLMUnavailable):
    reason: ClassVar[str] = "unavailable"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail, headers=headers, reason=self.reason, **extra)


class LLMRateLimited(_LLMFailure):
    reason = "rate_limited"
    title = "The language model service is rate limiting requests"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        super().__init__(detail, headers=headers, retry_after=retry_after)
        self.retry_after = retry_after


class LLMTimeout(_LLMFailure):
    reason = "timeout"
    title = "The language model service did not answer in time"


class LLMConnectionFailed(_LLMFailure):
    reason = "connection"
    title = "The language model service cannot be reached"


class LLMUpstreamError(_LLMFailure):
    reason = "upstream_error"
    title = "The language model service failed"


class LLMRequestRejected(_LLMFailure):
    """The service refused the request itself (key, credits, model name): retrying will not help."""

    reason = "rejected"
    title = "The language model service rejected the request"


class LLMLocalModelFailed(_LLMFailure):
    reason = "local_model"
    title = "The local language model failed"


class LLMStreamInterrupted(_LLMFailure):
    """The answer broke off after some text was already streamed; that text is in ``partial_text``.

    Never retried: the reader has already seen the partial answer.
    """

    reason = "interrupted"
    title = "The language model stopped mid-answer"

    def __init__(self, detail: str | None = None, *, partial_text: str) -> None:
        super().__init__(detail)
        self.partial_text = partial_text

"""The remote provider's retry policy: what is retried, how long to wait (honouring a short ``Retry-After``),
and the log line of each retry. Used only until the first token (see ``remote.py``)."""

from __future__ import annotations

import email.utils
import time

import openai
import structlog
from tenacity import AsyncRetrying, RetryCallState, wait_exponential, wait_random

log = structlog.get_logger(__name__)

MAX_HONOURED_RETRY_AFTER_SECONDS = 10.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})


class StreamEndedEarly(openai.APIError):
    """The response ended before the model said it had finished (no ``finish_reason``, no ``[DONE]``)."""

    def __init__(self, stream: openai.AsyncStream[object]) -> None:
        super().__init__("the answer stream ended before the model finished", stream.response.request, body=None)


class BackoffHonouringRetryAfter:
    """Exponential backoff with jitter, or the server's ``Retry-After`` when it gives one."""

    def __init__(self, *, initial: float, maximum: float) -> None:
        self._backoff = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = retry_after_seconds(error) if isinstance(error, openai.APIStatusError) else None
        if hinted is not None:
            return min(hinted, MAX_HONOURED_RETRY_AFTER_SECONDS)
        return self._backoff(retry_state)


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, openai.APIConnectionError | StreamEndedEarly):  # timeouts included
        return True
    if isinstance(error, openai.APIStatusError):
        if error.status_code == 429:
            wait = retry_after_seconds(error)
            return wait is None or wait <= MAX_HONOURED_RETRY_AFTER_SECONDS
        return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
    return False


def retry_after_seconds(error: openai.APIStatusError) -> float | None:
    headers = error.response.headers
    if milliseconds := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate_tz(value) else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def attempts(retrying: AsyncRetrying) -> int:
    return int(retrying.statistics.get("attempt_number", 1))


def log_retry(retry_state: RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0
    log.warning(
        "llm request failed; retrying",
        attempt=retry_state.attempt_number,
        error=type(error).__name__,
        retry_in_seconds=round(wait, 2),
    )

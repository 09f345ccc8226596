"""Any OpenAI-compatible chat-completions service (OpenRouter by default), streamed.

One retry policy (tenacity; the openai client's own retries are off): 429, 408/409, 5xx, timeouts
and connection errors are retried with exponential backoff, honouring a short ``Retry-After``, but
only until the first token. Once text has reached the caller nothing is retried; a break then is
``LLMStreamInterrupted`` carrying the partial text. A stream is whole only when the model gave a
``finish_reason``: one that simply ends without it (no ``[DONE]`` either) was cut by the service or a
proxy, and counts as a break too.

Requests go through the client's low-level ``post`` with ``cast_to=object``, so chunks stay plain
dicts: the typed ``chat.completions.create`` spent ~15 ms of CPU per 66-token answer building
pydantic objects and transforming the request, against ~3 ms this way (bench/llm_stream.py).
Auth, headers, timeouts, SSE decoding and the error classes are still the client's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import openai
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
)

from medchat.llm.errors import (
    LLMConnectionFailed,
    LLMRateLimited,
    LLMRequestRejected,
    LLMStreamInterrupted,
    LLMTimeout,
    LLMUnavailable,
    LLMUpstreamError,
)
from medchat.llm.observed import observed
from medchat.llm.prompts import build_prompt, estimate_prompt_tokens, estimate_tokens, to_openai_messages
from medchat.llm.remote_retries import (
    RETRYABLE_STATUSES,
    BackoffHonouringRetryAfter,
    StreamEndedEarly,
    attempts,
    is_retryable,
    log_retry,
    retry_after_seconds,
)
from medchat.llm.tracing import NoopTracer, Tracer
from medchat.llm.types import GenerationDone, GenerationRequest, StreamEvent, TextDelta, Usage
from medchat.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

APP_TITLE = "medchat"
DEFAULT_APP_URL = "https://medchat.dev"
CONNECT_TIMEOUT_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 3.0
"""A longer ``Retry-After`` is reported to the user at once instead of waited for."""
COMPLETIONS_PATH = "/chat/completions"


@observed
class RemoteProvider:
    kind: Literal["remote"] = "remote"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
        max_output_tokens: int = 1024,
        context_tokens: int = 8000,
        app_url: str = DEFAULT_APP_URL,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        tracer: Tracer | None = None,
    ) -> None:
        self.model = model
        self.label = f"{model} via {urlsplit(base_url).hostname or base_url}"
        self._base_url = base_url
        self._timeout_seconds = timeout_seconds
        self._max_retries = max_retries
        self._max_output_tokens = max_output_tokens
        self._context_tokens = context_tokens
        self._wait = BackoffHonouringRetryAfter(initial=backoff_seconds, maximum=max_backoff_seconds)
        self._tracer: Tracer = tracer or NoopTracer()
        self._owns_client = True
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeout_seconds, connect=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)),
            default_headers={"HTTP-Referer": app_url, "X-Title": APP_TITLE},
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, tracer: Tracer | None = None) -> RemoteProvider:
        if not settings.llm_api_key:
            raise ValueError("the remote provider needs MEDCHAT_LLM_API_KEY")
        return cls(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            max_output_tokens=settings.llm_max_output_tokens,
            context_tokens=settings.llm_context_tokens,
            app_url=settings.public_url or DEFAULT_APP_URL,
            tracer=tracer,
        )

    def with_model(self, model: str) -> RemoteProvider:
        """The same service, settings and HTTP client (its connection pool), answering with ``model``.

        Only this provider closes the shared client: ``aclose`` on the returned one does nothing."""
        sibling = copy.copy(self)
        sibling.model = model
        sibling.label = f"{model} via {urlsplit(self._base_url).hostname or self._base_url}"
        sibling._owns_client = False
        return sibling

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        messages = to_openai_messages(build_prompt(request, context_tokens=self._context_tokens))
        with self._tracer.generation(provider="openai", model=self.model, messages=messages) as trace:
            opened = await self._with_retries(lambda: self._open_stream(messages))
            result = _StreamResult(model=self.model)
            try:
                async with aclosing(opened.chunks()) as chunks:
                    async for chunk in chunks:
                        text = result.absorb(chunk)
                        if text:
                            trace.add_text(text)
                            yield TextDelta(text)
            except Exception as error:  # after the first token, every break is an interruption
                raise self._interrupted(error, partial_text=result.text) from error
            finally:
                await opened.stream.close()
            if result.finish_reason is None:
                raise self._interrupted(StreamEndedEarly(opened.stream), partial_text=result.text)
            usage = result.usage or Usage(estimate_prompt_tokens(messages), estimate_tokens(result.text))
            trace.finish(usage=usage, finish_reason=result.finish_reason, model=result.model)
            yield GenerationDone(model=result.model, usage=usage, finish_reason=result.finish_reason)

    async def complete(self, prompt: str, *, max_tokens: int = 32) -> str:
        messages = [{"role": "user", "content": prompt}]
        with self._tracer.generation(provider="openai", model=self.model, messages=messages) as trace:
            body = {"model": self.model, "messages": messages, "max_tokens": max_tokens}
            response = await self._with_retries(lambda: self._client.post(COMPLETIONS_PATH, body=body, cast_to=object))
            answer = response if isinstance(response, dict) else {}
            choice = (answer.get("choices") or [{}])[0]
            text = (choice.get("message") or {}).get("content") or ""
            trace.add_text(text)
            usage = _usage(answer.get("usage")) or Usage(estimate_prompt_tokens(messages), estimate_tokens(text))
            model = answer.get("model") or self.model
            trace.finish(usage=usage, finish_reason=choice.get("finish_reason"), model=model)
        return text.strip()

    async def ping(self) -> bool:
        """``GET {base}/models`` (free on OpenRouter); a server without that route still counts as up."""
        try:
            await self._client.with_options(timeout=PING_TIMEOUT_SECONDS).models.list()
        except openai.APIStatusError as error:
            return error.status_code in (404, 405)
        except Exception:
            log.debug("llm ping failed", exc_info=True)
            return False
        return True

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    # --- internals -------------------------------------------------------------------------------
    async def _open_stream(self, messages: list[dict[str, Any]]) -> _OpenedStream:
        """Start a stream and read up to its first text, so a failure up to there can be retried."""
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self._max_output_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stream = await self._client.post(
            COMPLETIONS_PATH, body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object]
        )
        opened = _OpenedStream(stream)
        try:
            async for chunk in stream:
                opened.head.append(chunk)
                if _has_text(chunk):
                    break
            else:
                opened.exhausted = True
                if not any(_has_finish_reason(chunk) for chunk in opened.head):
                    raise StreamEndedEarly(stream)  # nothing reached the reader yet: retried like a 5xx
        except BaseException:
            await stream.close()
            raise
        return opened

    async def _with_retries(self, operation: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await operation()
        except openai.APIError as error:
            raise self._unavailable(error, attempts=attempts(retrying)) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _unavailable(self, error: openai.APIError, *, attempts: int) -> LLMUnavailable:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        host = urlsplit(self._base_url).netloc or self._base_url
        if isinstance(error, openai.APITimeoutError):
            return LLMTimeout(
                f"The language model service at {host} did not answer within {self._timeout_seconds:g} seconds "
                f"({tries}); try again later."
            )
        if isinstance(error, openai.APIConnectionError):
            return LLMConnectionFailed(
                f"Could not connect to the language model service at {host} ({tries}); "
                "check MEDCHAT_LLM_BASE_URL and the network."
            )
        if isinstance(error, openai.APIStatusError):
            return self._status_error(error, tries=tries)
        return LLMUpstreamError(f"The language model service reported an error: {_upstream_message(error)}")

    def _status_error(self, error: openai.APIStatusError, *, tries: str) -> LLMUnavailable:
        status = error.status_code
        if status == 429:
            wait = retry_after_seconds(error)
            seconds = max(1, math.ceil(wait)) if wait is not None else None
            when = f"in {seconds} second{'s' if seconds != 1 else ''}" if seconds else "in a minute"
            return LLMRateLimited(
                f"The language model service is rate limiting requests; try again {when}.", retry_after=seconds
            )
        if status in (401, 403):
            return LLMRequestRejected(
                f"The language model service refused the API key (HTTP {status}); check MEDCHAT_LLM_API_KEY."
            )
        if status == 402:
            return LLMRequestRejected(
                "The language model account has run out of credit (HTTP 402); top it up or change MEDCHAT_LLM_MODEL."
            )
        if status < 500 and status not in RETRYABLE_STATUSES:
            return LLMRequestRejected(
                f"The language model service rejected the request (HTTP {status}: {_upstream_message(error)}); "
                f"check MEDCHAT_LLM_MODEL ({self.model}) and MEDCHAT_LLM_BASE_URL."
            )
        return LLMUpstreamError(f"The language model service failed (HTTP {status}, {tries}); try again later.")

    def _interrupted(self, error: Exception, *, partial_text: str) -> LLMStreamInterrupted:
        log.warning("llm stream interrupted", characters=len(partial_text), error=str(error))
        return LLMStreamInterrupted(
            "The language model service stopped in the middle of the answer; the answer is incomplete.",
            partial_text=partial_text,
        )


@dataclass
class _OpenedStream:
    stream: openai.AsyncStream[object]
    head: list[object] = field(default_factory=list)
    exhausted: bool = False

    async def chunks(self) -> AsyncIterator[object]:
        for chunk in self.head:
            yield chunk
        if not self.exhausted:
            async for chunk in self.stream:
                yield chunk


@dataclass
class _StreamResult:
    model: str
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def absorb(self, chunk: object) -> str:
        """Take what a ``chat.completion.chunk`` says about the answer; return its new text."""
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("model"):
            self.model = chunk["model"]
        if usage := _usage(chunk.get("usage")):
            self.usage = usage
        text = ""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            if content := (choice.get("delta") or {}).get("content"):
                text += content
        if text:
            self.parts.append(text)
        return text


def _has_text(chunk: object) -> bool:
    return isinstance(chunk, dict) and any(
        (choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ()
    )


def _has_finish_reason(chunk: object) -> bool:
    return isinstance(chunk, dict) and any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


def _usage(reported: object) -> Usage | None:
    if not isinstance(reported, dict):
        return None
    return Usage(int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0))


def _upstream_message(error: openai.APIError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") or error.message
    return " ".join(str(message).split())[:200]

"""Metrics and a span for every model call, whatever the provider: ``@observed`` on a provider class.

One wrapper for every provider kind keeps the names, labels and outcomes the same for the remote
service, the local model and sources-only answers. Each ``stream`` is one ``llm.generate`` span and
each ``complete`` one ``llm.complete`` span, with the model, the provider kind, token counts and the time
to the first token; never message text.

The span is started without becoming the current span: a stream is an async generator resumed by its
consumer, so a current span would leak into the consumer's context between tokens and become the parent
of whatever the consumer does meanwhile (storing, publishing). It covers the model call only.

Outcomes are ``ok``, ``error`` and ``stopped`` (the consumer cancelled or closed the stream: the user
pressed stop, or the server shut down), so a stop never counts as a model failure.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Literal, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode

from medchat.llm.types import GenerationDone, GenerationRequest, StreamEvent, TextDelta, Usage
from medchat.platform.errors import LLMUnavailable
from medchat.platform.metrics import (
    LLM_DURATION,
    LLM_ERRORS,
    LLM_REQUESTS,
    LLM_TIME_TO_FIRST_TOKEN,
    LLM_TOKENS,
)
from medchat.platform.spans import TRACER

Outcome = Literal["ok", "error", "stopped"]
ProviderClass = TypeVar("ProviderClass", bound=type)

ERROR_REASONS = frozenset(
    {"rate_limited", "timeout", "connection", "upstream_error", "rejected", "local_model", "interrupted"}
)
"""The ``reason`` of ``llm.errors``' failures; any other ``LLMUnavailable`` is ``unavailable``, any other
exception ``internal``: a small, fixed label set."""


def observed(cls: ProviderClass) -> ProviderClass:
    """Wrap the provider class's ``stream`` and ``complete`` so every call is measured and traced."""
    cls.stream = _observed_stream(cls.stream)  # type: ignore[attr-defined]
    cls.complete = _observed_complete(cls.complete)  # type: ignore[attr-defined]
    return cls


def error_reason(error: BaseException) -> str:
    """The ``reason`` label of a failed call."""
    if not isinstance(error, LLMUnavailable):
        return "internal"
    reason = getattr(error, "reason", None)
    return reason if reason in ERROR_REASONS else "unavailable"


def _observed_stream(
    stream: Callable[[Any, GenerationRequest], AsyncIterator[StreamEvent]],
) -> Callable[[Any, GenerationRequest], AsyncIterator[StreamEvent]]:
    @functools.wraps(stream)
    async def observed_stream(provider: Any, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        call = ModelCall("llm.generate", provider)
        try:
            async with aclosing(stream(provider, request)) as events:
                async for event in events:
                    if isinstance(event, TextDelta) and event.text:
                        call.first_token()
                    elif isinstance(event, GenerationDone):
                        call.done(event.model, event.usage)
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            call.end("ok" if call.finished else "stopped")
            raise
        except BaseException as error:
            call.end("error", error)
            raise
        call.end("ok")

    return observed_stream


def _observed_complete(complete: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(complete)
    async def observed_complete(provider: Any, prompt: str, **options: Any) -> str:
        call = ModelCall("llm.complete", provider)
        try:
            text = await complete(provider, prompt, **options)
        except asyncio.CancelledError:
            call.end("stopped")
            raise
        except BaseException as error:
            call.end("error", error)
            raise
        call.end("ok")
        return text

    return observed_complete


class ModelCall:
    """One model call's span and metrics, from its start to ``end``."""

    def __init__(self, span_name: str, provider: Any) -> None:
        self.model: str = provider.model
        self.provider: str = provider.kind
        self.finished = False
        """The stream's ``GenerationDone`` arrived: the answer is whole whatever the consumer does next."""
        self._started = time.perf_counter()
        self._first_token_seen = False
        self._span = TRACER.start_span(
            span_name,
            kind=SpanKind.CLIENT,
            attributes={"gen_ai.request.model": self.model, "gen_ai.system": self.provider},
        )

    def first_token(self) -> None:
        if self._first_token_seen:
            return
        self._first_token_seen = True
        seconds = time.perf_counter() - self._started
        LLM_TIME_TO_FIRST_TOKEN.labels(model=self.model).observe(seconds)
        self._span.set_attribute("medchat.time_to_first_token_ms", round(seconds * 1000, 2))

    def done(self, answered_by: str, usage: Usage) -> None:
        self.finished = True
        LLM_TOKENS.labels(model=self.model, direction="input").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(model=self.model, direction="output").inc(usage.completion_tokens)
        self._span.set_attributes(
            {
                "gen_ai.response.model": answered_by,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
            }
        )

    def end(self, outcome: Outcome, error: BaseException | None = None) -> None:
        """Count the call and end its span; a stopped call's duration is the user's, not the model's."""
        LLM_REQUESTS.labels(model=self.model, provider=self.provider, outcome=outcome).inc()
        if outcome != "stopped":
            LLM_DURATION.labels(model=self.model).observe(time.perf_counter() - self._started)
        self._span.set_attribute("medchat.outcome", outcome)
        if error is not None:
            reason = error_reason(error)
            LLM_ERRORS.labels(model=self.model, reason=reason).inc()
            # The reason only: an upstream error message may quote the request.
            self._span.set_attribute("error.type", reason)
            self._span.set_status(Status(StatusCode.ERROR, reason))
        self._span.end()

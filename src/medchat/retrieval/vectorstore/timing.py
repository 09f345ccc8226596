"""Latency, errors and spans of every call a vector store adapter makes to Qdrant (Edge or server).

Both adapters mark their store-facing methods with ``@qdrant_call("<operation>")``, so the two report the
same ``STORE_CALL_DURATION{store="qdrant"}`` series. A ``qdrant.<operation>`` span is made only inside a
trace (a request's, or an ingestion job's), which keeps health checks out of exported traces.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from medchat.platform.metrics import STORE_CALL_DURATION, STORE_CALL_ERRORS
from medchat.platform.spans import TRACER

P = ParamSpec("P")
T = TypeVar("T")

STORE = "qdrant"


def qdrant_call(operation: str) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Time each call of the decorated coroutine method as ``operation``; a raised error counts as a failed call."""
    duration = STORE_CALL_DURATION.labels(store=STORE, operation=operation)
    errors = STORE_CALL_ERRORS.labels(store=STORE, operation=operation)
    span_name = f"qdrant.{operation}"
    attributes = {"db.system": STORE, "db.operation.name": operation}

    def decorate(call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(call)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                if trace.get_current_span().is_recording():
                    with TRACER.start_as_current_span(span_name, kind=SpanKind.CLIENT, attributes=attributes):
                        return await call(*args, **kwargs)
                return await call(*args, **kwargs)
            except Exception:  # a cancelled call (the caller went away) is not a store failure
                errors.inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        return timed

    return decorate

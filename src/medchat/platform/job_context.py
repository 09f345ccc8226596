"""Trace context carried through the job queue, so a job's spans continue the trace of the request that queued it.

The queueing side puts ``current_trace_context()`` (the W3C ``traceparent``/``tracestate`` headers, as a
plain dict) among the job's arguments; the job runs its work inside ``continued_trace(that dict)``. Only
the trace context travels: no baggage, which could carry anything a caller attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()


def current_trace_context() -> dict[str, str]:
    """The current span's context as W3C headers; empty outside a trace (the job then starts its own)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


@contextmanager
def continued_trace(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make the span ``carrier`` names the current parent while the block runs (nothing changes without one)."""
    if not carrier:
        yield
        return
    token = context.attach(_W3C.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)

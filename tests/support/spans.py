"""The spans this test process finishes, kept in memory (the same spans OTLP would export).

``telemetry.configure_tracing`` installs the process's one tracer provider; ``span_recorder`` adds an
in-memory exporter to it once, through a ``SimpleSpanProcessor`` (each span is recorded as it ends), and
turns recording on (without a receiver, spans are dropped at creation).
Clear it before the work a test looks at: the provider is shared by every test in the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from medchat.platform.telemetry import SAMPLER, configure_tracing


@cache
def span_recorder() -> InMemorySpanExporter:
    configure_tracing()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), f"medchat's tracer provider is not installed: {provider!r}"
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    SAMPLER.receiving = True
    return exporter


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The one finished span called ``name``; fails naming the spans there are."""
    found = named(spans, name)
    assert len(found) == 1, f"expected one {name!r} span, got {[span.name for span in spans]}"
    return found[0]


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    """The finished span ``span`` is a child of, if it is among ``spans``."""
    if span.parent is None:
        return None
    return next((other for other in spans if other.context.span_id == span.parent.span_id), None)

"""OpenTelemetry traces (exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set) and Prometheus metrics."""

from __future__ import annotations

import os
from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult

SERVICE_NAME = "medchat"
METRICS_PATH = "/metrics"

_configured = False


class RecordWhenReceived(Sampler):
    """Records spans only once something receives them (an exporter, or a test's recorder).

    Until then every span is dropped at creation: it still gets a trace id and a span id, which request logs
    carry, but no attributes, events or processor work are paid for on each request (about a millisecond of
    CPU per chat turn with nothing exported)."""

    def __init__(self) -> None:
        self.receiving = False
        self._sampled = ParentBased(ALWAYS_ON)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        if self.receiving:
            return self._sampled.should_sample(*args, **kwargs)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "RecordWhenReceived"


SAMPLER = RecordWhenReceived()


def configure_tracing() -> None:
    """Install a tracer provider once per process; spans go to OTLP only when an endpoint is configured."""
    global _configured  # noqa: PLW0603 - the global tracer provider can be set once per process
    if _configured:
        return
    resource = Resource.create({"service.name": os.getenv("OTEL_SERVICE_NAME", SERVICE_NAME)})
    provider = TracerProvider(resource=resource, sampler=SAMPLER)
    if os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        SAMPLER.receiving = True
    trace.set_tracer_provider(provider)
    _configured = True


def opentelemetry_config() -> OpenTelemetryConfig:
    configure_tracing()
    return OpenTelemetryConfig(
        exclude=["/healthz", "/readyz", "/ping", METRICS_PATH, "/static"],
        # A span per ASGI message would add one per streamed token to a chat trace, and its cost to the turn.
        exclude_spans=["receive", "send"],
    )


prometheus_config = PrometheusConfig(
    app_name=SERVICE_NAME,
    prefix=SERVICE_NAME,
    exclude=[METRICS_PATH, "/static"],
    group_path=True,
)


class MetricsController(PrometheusController):
    path = METRICS_PATH
    include_in_schema = False

"""OpenTelemetry traces (exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set) and Prometheus metrics."""

from __future__ import annotations

import os

from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SERVICE_NAME = "medchat"
METRICS_PATH = "/metrics"

_configured = False


def configure_tracing() -> None:
    """Install a tracer provider once per process; spans go to OTLP only when an endpoint is configured."""
    global _configured  # noqa: PLW0603 - the global tracer provider can be set once per process
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": os.getenv("OTEL_SERVICE_NAME", SERVICE_NAME)}))
    if os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT") or os.getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
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

"""OpenTelemetry spans of medchat's own work (the HTTP span comes from Litestar's plugin).

Use ``TRACER.start_as_current_span("retrieval.search", attributes=...)``; names are ``<module>.<step>``.
Spans go nowhere until ``telemetry.configure_tracing`` installs a provider with an exporter.
"""

from __future__ import annotations

from opentelemetry import trace

TRACER = trace.get_tracer("medchat")

"""A real OTLP/HTTP trace receiver in the test process: what a collector (Alloy, Tempo) receives, kept in memory.

Point a process at it with ``OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint``; its exporter POSTs
protobuf ``ExportTraceServiceRequest`` bodies to ``/v1/traces``, which are decoded into ``ReceivedSpan``::

    with OtlpReceiver() as receiver:
        ...  # start the process, do the work
        spans = receiver.wait_for(lambda spans: any(span.name == "llm.generate" for span in spans))
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    """``SPAN_KIND_SERVER``, ``SPAN_KIND_CLIENT``, ``SPAN_KIND_INTERNAL``, ..."""
    attributes: dict[str, Any]
    status: str
    """``STATUS_CODE_UNSET``, ``STATUS_CODE_OK`` or ``STATUS_CODE_ERROR``."""
    service_name: str


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters add ``/v1/traces``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def received(self, request: ExportTraceServiceRequest) -> None:
        spans = [
            _received_span(span, _service_name(resource_spans.resource.attributes))
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._changed:
            self.spans.extend(spans)
            self.requests += 1
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[ReceivedSpan]], bool], timeout: float = 30.0) -> list[ReceivedSpan]:
        """The spans received so far, once ``condition`` holds for them; woken by each export, not by polling."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(list(self.spans)), timeout=timeout):
                names = sorted({span.name for span in self.spans})
                raise TimeoutError(f"the condition never held within {timeout} s; spans received: {names}")
            return list(self.spans)


class _Handler(BaseHTTPRequestHandler):
    receiver: OtlpReceiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.path != TRACES_PATH:
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(415, "this receiver speaks protobuf only")
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.receiver.received(request)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def _received_span(span: Span, service_name: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=Span.SpanKind.Name(span.kind),
        attributes={attribute.key: _value(attribute.value) for attribute in span.attributes},
        status=Status.StatusCode.Name(span.status.code),
        service_name=service_name,
    )


def _service_name(attributes: Sequence[Any]) -> str:
    return next((_value(attribute.value) for attribute in attributes if attribute.key == "service.name"), "")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def parent_of(span: ReceivedSpan, spans: Sequence[ReceivedSpan]) -> ReceivedSpan | None:
    return next((other for other in spans if other.span_id == span.parent_span_id), None)


def ancestors(span: ReceivedSpan, spans: Sequence[ReceivedSpan]) -> list[ReceivedSpan]:
    """``span``'s parent, its parent's parent, ... up to the first that is missing from ``spans``."""
    chain: list[ReceivedSpan] = []
    parent = parent_of(span, spans)
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = parent_of(parent, spans)
    return chain

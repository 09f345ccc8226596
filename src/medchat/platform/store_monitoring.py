"""Latency, errors and spans of every MongoDB command and Redis command the app sends.

Both run on every request, so they stay cheap: one histogram observation per call (the labelled
child is looked up once per operation), and a span only when the call happens inside a trace, which
keeps the worker's housekeeping and the stores' own chatter out of the exported traces.

MongoDB: pymongo's async client runs a command, and publishes its started and finished events, in
the coroutine that awaits it, so the caller's current span is the command span's parent.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client.metrics import Histogram
from pymongo import monitoring
from redis.asyncio import Redis

from medchat.platform.metrics import STORE_CALL_DURATION, STORE_CALL_ERRORS
from medchat.platform.spans import TRACER

UNTRACED_MONGODB_COMMANDS = frozenset(
    {
        "hello",
        "ismaster",
        "ping",
        "buildinfo",
        "endsessions",
        "killcursors",
        "saslstart",
        "saslcontinue",
        "authenticate",
        "getnonce",
    }
)
"""Handshakes, health checks and cleanup: timed, but no span (they would crowd every trace)."""


@cache
def _duration_of(store: str, operation: str) -> Histogram:
    return STORE_CALL_DURATION.labels(store=store, operation=operation)


def _in_a_trace() -> bool:
    """Inside a trace that is being recorded (a dropped one would get no use of a child span)."""
    return trace.get_current_span().is_recording()


class MongoCommandMonitor(monitoring.CommandListener):
    """Times every command into ``STORE_CALL_DURATION`` and wraps those inside a trace in a ``mongodb.<command>`` span.

    The span is started with the started event and ended with the matching finished event, keyed by
    the connection and the request id, which pymongo pairs for us. The command document never leaves
    this class: it holds the patients' questions.
    """

    def __init__(self) -> None:
        self._open_spans: dict[tuple[Any, int], Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name.lower() in UNTRACED_MONGODB_COMMANDS or not _in_a_trace():
            return
        attributes = {
            "db.system": "mongodb",
            "db.operation.name": event.command_name,
            "db.namespace": event.database_name,
        }
        collection = event.command.get(event.command_name)
        if isinstance(collection, str):
            attributes["db.collection.name"] = collection
        span = TRACER.start_span(f"mongodb.{event.command_name}", kind=SpanKind.CLIENT, attributes=attributes)
        self._open_spans[(event.connection_id, event.request_id)] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        _duration_of("mongodb", event.command_name).observe(event.duration_micros / 1_000_000)
        span = self._open_spans.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        _duration_of("mongodb", event.command_name).observe(event.duration_micros / 1_000_000)
        STORE_CALL_ERRORS.labels(store="mongodb", operation=event.command_name).inc()
        span = self._open_spans.pop((event.connection_id, event.request_id), None)
        if span is not None:
            failure = event.failure
            reason = failure.get("codeName", "failed") if isinstance(failure, dict) else "failed"
            span.set_status(Status(StatusCode.ERROR, str(reason)))
            span.end()


class TimedRedis(Redis):
    """The app's Redis client: each command is timed into ``STORE_CALL_DURATION`` (a span too, inside a trace).

    Pipelines and the job queue's own connections are not covered: they send their commands elsewhere.
    """

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        operation = _command_name(args[0])
        started = time.perf_counter()
        try:
            if _in_a_trace():
                with TRACER.start_as_current_span(
                    f"redis.{operation}",
                    kind=SpanKind.CLIENT,
                    attributes={"db.system": "redis", "db.operation.name": operation},
                ):
                    return await super().execute_command(*args, **options)
            return await super().execute_command(*args, **options)
        except Exception:
            STORE_CALL_ERRORS.labels(store="redis", operation=operation).inc()
            raise
        finally:
            _duration_of("redis", operation).observe(time.perf_counter() - started)


@cache
def _command_name(name: str | bytes) -> str:
    """``GET``/``b"get"`` → ``get``; cached, the app sends a handful of distinct commands."""
    return (name.decode() if isinstance(name, bytes) else str(name)).lower()

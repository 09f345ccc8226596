"""Store calls are timed, counted when they fail, and traced inside a request, on the real embedded stores."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY
from pymongo.errors import OperationFailure
from redis.exceptions import ResponseError

from medchat.platform.spans import TRACER
from medchat.runtime import Runtime
from tests.support.accounts import RegisterUser
from tests.support.spans import named, only, parent_of, span_recorder

SECRET_NOTE = "patient note that must never reach a span"


def calls(store: str, operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "medchat_store_call_duration_seconds_count", {"store": store, "operation": operation}
    )
    return value or 0.0


def errors(store: str, operation: str) -> float:
    value = REGISTRY.get_sample_value("medchat_store_call_errors_total", {"store": store, "operation": operation})
    return value or 0.0


async def test_mongodb_commands_are_timed_and_traced_as_children_of_the_callers_span(runtime: Runtime) -> None:
    recorder = span_recorder()
    recorder.clear()
    notes = runtime.stores.database["monitored_notes"]
    before = {operation: calls("mongodb", operation) for operation in ("insert", "find", "update", "delete")}

    with TRACER.start_as_current_span("test.caller") as caller:
        await notes.insert_one({"text": SECRET_NOTE})
        assert await notes.find_one({"text": SECRET_NOTE}) is not None
        await notes.update_one({"text": SECRET_NOTE}, {"$set": {"seen": True}})
        await notes.delete_one({"text": SECRET_NOTE})

    assert {operation: calls("mongodb", operation) - before[operation] for operation in before} == {
        "insert": 1,
        "find": 1,
        "update": 1,
        "delete": 1,
    }
    spans = recorder.get_finished_spans()
    for operation in ("insert", "find", "update", "delete"):
        span = only(spans, f"mongodb.{operation}")
        assert parent_of(span, spans) is not None and parent_of(span, spans).name == "test.caller"
        assert span.context.trace_id == caller.get_span_context().trace_id
        assert span.kind == SpanKind.CLIENT
        assert span.attributes == {
            "db.system": "mongodb",
            "db.operation.name": operation,
            "db.namespace": runtime.settings.mongodb_database,
            "db.collection.name": "monitored_notes",
        }
        assert span.end_time is not None and span.end_time >= span.start_time


async def test_outside_a_trace_commands_are_timed_but_make_no_span(runtime: Runtime) -> None:
    recorder = span_recorder()
    recorder.clear()
    before = calls("mongodb", "insert"), calls("redis", "set")

    await runtime.stores.database["untraced"].insert_one({"n": 1})
    await runtime.stores.redis.set("untraced", b"1")

    assert (calls("mongodb", "insert"), calls("redis", "set")) == (before[0] + 1, before[1] + 1)
    assert recorder.get_finished_spans() == ()


async def test_a_failed_mongodb_command_is_counted_and_its_span_marked(runtime: Runtime) -> None:
    recorder = span_recorder()
    recorder.clear()
    before = errors("mongodb", "aggregate")

    with TRACER.start_as_current_span("test.caller"), pytest.raises(OperationFailure):
        await runtime.stores.database.command(
            "aggregate", "monitored_notes", pipeline=[{"$noSuchStage": {}}], cursor={}
        )

    assert errors("mongodb", "aggregate") == before + 1
    failed = only(recorder.get_finished_spans(), "mongodb.aggregate")
    assert failed.status.status_code == StatusCode.ERROR


async def test_health_pings_are_timed_without_spans(runtime: Runtime) -> None:
    recorder = span_recorder()
    recorder.clear()
    before = calls("mongodb", "ping")

    with TRACER.start_as_current_span("test.caller"):
        await runtime.stores.ping_mongodb()

    assert calls("mongodb", "ping") == before + 1
    assert [span.name for span in recorder.get_finished_spans()] == ["test.caller"]


async def test_redis_commands_are_timed_counted_when_they_fail_and_traced_inside_a_span(runtime: Runtime) -> None:
    recorder = span_recorder()
    recorder.clear()
    redis = runtime.stores.redis
    before = calls("redis", "set"), calls("redis", "get"), errors("redis", "lpush")

    with TRACER.start_as_current_span("test.caller"):
        await redis.set("monitored", b"value")
        assert await redis.get("monitored") == b"value"
        with pytest.raises(ResponseError):
            await redis.lpush("monitored", b"not a list")  # WRONGTYPE

    assert (calls("redis", "set"), calls("redis", "get"), errors("redis", "lpush")) == (
        before[0] + 1,
        before[1] + 1,
        before[2] + 1,
    )
    spans = recorder.get_finished_spans()
    for operation in ("set", "get"):
        span = only(spans, f"redis.{operation}")
        assert parent_of(span, spans).name == "test.caller"
        assert span.attributes == {"db.system": "redis", "db.operation.name": operation}
    assert only(spans, "redis.lpush").status.status_code == StatusCode.ERROR


async def test_a_request_s_writes_are_children_of_its_http_span(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    recorder = span_recorder()
    recorder.clear()

    await register_user(client)

    spans = recorder.get_finished_spans()
    http = next(span for span in spans if span.kind == SpanKind.SERVER and "/auth/register" in span.name)
    writes = named(spans, "mongodb.insert")
    assert writes, f"registering stores the account: {[span.name for span in spans]}"
    for write in writes:
        ancestor = parent_of(write, spans)
        while ancestor is not None and ancestor is not http:
            ancestor = parent_of(ancestor, spans)
        assert ancestor is http, f"{write.name} is not below the HTTP span"

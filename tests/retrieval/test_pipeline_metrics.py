"""Ingestion, search and queue metrics and spans, through the in-process app on the real embedded stores.

Metrics are read from the process's Prometheus registry before and after; spans from an in-memory exporter
on the process's tracer provider. The ingestion job runs in the app's in-process arq worker, so its
outcome is counted (and its span ended) a moment after the document reads ``ready``: those are awaited
with a bounded poll, like the status itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from medchat.app import create_app
from medchat.runtime import QUEUE_NAME, Runtime
from medchat.settings import Settings
from medchat.worker import build_worker
from tests.support.accounts import RegisteredUser, RegisterUser
from tests.support.documents import upload, wait_until_final
from tests.support.leaflets import GOUT_LEAFLET, GOUT_LEAFLET_NAME
from tests.support.spans import named, only, parent_of, span_recorder

QUESTION = "What are tophi and where do they appear?"
WAIT_SECONDS = 30.0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def qdrant_calls(operation: str) -> float:
    return sample("medchat_store_call_duration_seconds_count", store="qdrant", operation=operation)


def retrieval_samples() -> dict[str, float]:
    samples = {
        f"{stage}_observations": sample("medchat_retrieval_duration_seconds_count", stage=stage)
        for stage in ("embedding", "vector_search", "total")
    }
    samples["searches"] = sample("medchat_retrieval_hits_count")
    samples["hits"] = sample("medchat_retrieval_hits_sum")
    samples["qdrant_searches"] = qdrant_calls("search")
    return samples


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for work the app finishes after its last visible write."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT_SECONDS} s")
        await asyncio.sleep(0.05)


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    parent = parent_of(span, spans)
    while parent is not None:
        chain.append(parent)
        parent = parent_of(parent, spans)
    return chain


def http_span(spans: Sequence[ReadableSpan], method: str, route: str) -> ReadableSpan | None:
    return next(
        (
            span
            for span in spans
            if span.kind == SpanKind.SERVER
            and span.name.startswith(method)
            and route in str((span.attributes or {}).get("http.route") or span.name)
        ),
        None,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app answering from its sources only (no model to start or fake)."""
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"llm_provider": "sources-only"}))) as client:
        yield client


async def upload_leaflet(client: AsyncTestClient[Litestar], user: RegisteredUser) -> dict:
    queued = await upload(client, user.headers, GOUT_LEAFLET.encode(), filename=GOUT_LEAFLET_NAME)
    document = await wait_until_final(client, user.headers, queued["id"])
    assert document["status"] == "ready", document["error"]
    return document


async def test_an_ingestion_is_counted_by_outcome_with_its_duration_and_chunks(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    ready_before = sample("medchat_ingestion_jobs_total", outcome="ready")
    durations_before = sample("medchat_ingestion_duration_seconds_count", outcome="ready")
    chunks_before = sample("medchat_ingestion_chunks_total")
    upserts_before = qdrant_calls("upsert")

    document = await upload_leaflet(client, user)
    await eventually(
        lambda: sample("medchat_ingestion_jobs_total", outcome="ready") > ready_before, "no ingestion counted ready"
    )

    assert document["chunks"] >= 2
    assert sample("medchat_ingestion_jobs_total", outcome="ready") == ready_before + 1
    assert sample("medchat_ingestion_duration_seconds_count", outcome="ready") == durations_before + 1
    assert sample("medchat_ingestion_duration_seconds_sum", outcome="ready") > 0
    assert sample("medchat_ingestion_chunks_total") == chunks_before + document["chunks"]
    assert qdrant_calls("upsert") > upserts_before


async def test_a_search_observes_its_stages_hits_and_qdrant_call(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    await upload_leaflet(client, user)
    before = retrieval_samples()

    response = await client.post("/api/v1/search", json={"query": QUESTION}, headers=user.headers)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results, "the leaflet answers the question"
    after = retrieval_samples()
    assert after["searches"] == before["searches"] + 1
    assert after["hits"] == before["hits"] + len(results)
    for stage in ("embedding", "vector_search", "total"):
        assert after[f"{stage}_observations"] == before[f"{stage}_observations"] + 1, stage
    assert after["qdrant_searches"] >= before["qdrant_searches"] + 1


async def test_a_chat_question_s_search_is_measured_too(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    await upload_leaflet(client, user)
    before = retrieval_samples()

    response = await client.post("/api/v1/chat/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 201, response.text
    assert response.json()["message"]["sources"], "the answer cites the leaflet"
    after = retrieval_samples()
    assert after["searches"] == before["searches"] + 1
    assert after["hits"] >= before["hits"] + 1
    assert after["total_observations"] == before["total_observations"] + 1


async def test_an_upload_s_trace_continues_into_its_ingestion_job(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    recorder = span_recorder()
    user = await register_user(client)
    recorder.clear()

    document = await upload_leaflet(client, user)
    await eventually(
        lambda: any(
            span.attributes and span.attributes.get("document.id") == document["id"]
            for span in named(recorder.get_finished_spans(), "retrieval.ingest")
        ),
        "no retrieval.ingest span for the upload",
    )

    spans = recorder.get_finished_spans()
    ingest = only(spans, "retrieval.ingest")
    upload_span = http_span(spans, "POST", "/api/v1/documents")
    assert upload_span is not None, sorted({span.name for span in spans})
    assert ingest.context.trace_id == upload_span.context.trace_id, "the job joins the upload's trace"
    assert upload_span in ancestors(ingest, spans), [span.name for span in ancestors(ingest, spans)]
    assert ingest.attributes["retrieval.ingest.outcome"] == "ready"
    steps = {span.name for span in spans if parent_of(span, spans) == ingest}
    assert {"retrieval.parse", "retrieval.chunk", "retrieval.index"} <= steps, steps
    index = only(spans, "retrieval.index")
    assert {"retrieval.embed", "qdrant.upsert"} <= {span.name for span in spans if parent_of(span, spans) == index}


@pytest.mark.parametrize("path", ["/api/v1/search", "/api/v1/chat/messages"])
async def test_a_search_is_a_span_with_its_embedding_and_vector_search_under_the_request(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, path: str
) -> None:
    """The chat starts its search in a task of its own early on: it must still land in the request's trace."""
    recorder = span_recorder()
    user = await register_user(client)
    await upload_leaflet(client, user)
    recorder.clear()

    body = {"query": QUESTION} if path.endswith("search") else {"content": QUESTION}
    response = await client.post(path, json=body, headers=user.headers)
    assert response.status_code in (200, 201), response.text
    await eventually(lambda: http_span(recorder.get_finished_spans(), "POST", path) is not None, "no request span")

    spans = recorder.get_finished_spans()
    search = only(spans, "retrieval.search")
    children = [span for span in spans if parent_of(span, spans) == search]
    assert sorted(span.name for span in children) == ["retrieval.embed_query", "retrieval.vector_search"]
    assert http_span(spans, "POST", path) in ancestors(search, spans)
    vector_search = only(spans, "retrieval.vector_search")
    assert vector_search.attributes["retrieval.collection"] == search.attributes["retrieval.collection"]
    assert search.attributes["retrieval.k"] > 0
    assert search.attributes["retrieval.hits"] >= 1
    assert "qdrant.search" in {span.name for span in spans if parent_of(span, spans) == vector_search}
    assert all(QUESTION not in str(span.attributes) for span in spans), "no question text in span attributes"


async def test_queue_depth_follows_the_jobs_waiting_in_the_queue(runtime: Runtime) -> None:
    """Jobs put in the queue while no worker runs are counted, and drop out once a worker has run them."""
    for _ in range(3):
        await runtime.job_queue.enqueue_job("ping")
    assert await runtime.job_queue.zcard(QUEUE_NAME) == 3

    await runtime.update_queue_depth()
    assert sample("medchat_queue_depth") == 3

    worker = build_worker(runtime, handle_signals=False, burst=True)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    assert worker.jobs_complete == 3

    await runtime.update_queue_depth()
    assert sample("medchat_queue_depth") == 0

"""Traces as an operator's collector receives them: ``medchat serve`` exporting over OTLP/HTTP to a real receiver.

One chat question is one trace, from the HTTP span down to the model call and the store writes; an
upload's trace continues into its ingestion job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.documents import INGESTION_TIMEOUT_SECONDS, POLL_SECONDS
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.leaflets import GOUT_LEAFLET, GOUT_LEAFLET_NAME
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, ancestors
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.slow

MODEL = "fake/traced-model"
QUESTION = "What are tophi and where do they appear?"
CHAT_PIPELINE = ("chat.triage", "retrieval.embed_query", "retrieval.vector_search", "llm.generate")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply="Tophi are firm lumps of urate crystals under the skin [1].") as server:
        yield server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver, fake_llm: FakeLLMServer
) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": fake_llm.base_url,
        "MEDCHAT_LLM_MODEL": MODEL,
        "MEDCHAT_CHAT_FOLLOW_UP_QUERIES": "off",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with ServeProcess(tmp_path_factory.mktemp("traces") / "data", extra_env=env) as started:
        yield started


@pytest.fixture(scope="module")
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        registered = client.post("/api/v1/auth/register", json={"email": "traced@example.org", "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        client.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
def uploaded(http: httpx.Client, receiver: OtlpReceiver) -> ReceivedSpan:
    """The leaflet, uploaded; returns the upload request's HTTP span once its ingestion's spans arrived."""
    response = http.post(
        "/api/v1/documents/",
        files={"file": (GOUT_LEAFLET_NAME, GOUT_LEAFLET.encode(), "text/plain")},
        data={"scope": "private"},
    )
    assert response.status_code == 202, response.text
    spans = receiver.wait_for(lambda spans: http_span(spans, "POST", "/api/v1/documents") is not None)
    upload_span = http_span(spans, "POST", "/api/v1/documents")
    assert upload_span is not None
    document = wait_until_indexed(http, response.json()["id"])
    assert document["status"] == "ready", document
    return upload_span


def wait_until_indexed(http: httpx.Client, document_id: str) -> dict:
    """The document once its ingestion ended: a bounded poll of its status, as the UI does."""
    deadline = time.monotonic() + INGESTION_TIMEOUT_SECONDS
    while True:
        document = http.get(f"/api/v1/documents/{document_id}").json()
        if document["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return document
        time.sleep(POLL_SECONDS)


def http_span(spans: list[ReceivedSpan], method: str, path: str) -> ReceivedSpan | None:
    """The server span of the request ``method path`` (the first, if there were several)."""
    return next(
        (
            span
            for span in spans
            if span.kind == "SPAN_KIND_SERVER"
            and span.name.startswith(method)
            and path in str(span.attributes.get("http.route") or span.attributes.get("http.target") or span.name)
        ),
        None,
    )


def in_trace(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == root.trace_id]


def assert_below(span: ReceivedSpan, root: ReceivedSpan, spans: list[ReceivedSpan]) -> None:
    chain = ancestors(span, spans)
    assert root in chain, f"{span.name} is not below {root.name}: its parents are {[each.name for each in chain]}"


def test_a_chat_question_is_one_trace_from_the_http_span_to_the_model_call_and_the_writes(
    http: httpx.Client, receiver: OtlpReceiver, uploaded: ReceivedSpan
) -> None:
    response = http.post("/api/v1/chat/messages", json={"content": QUESTION})
    assert response.status_code == 201, response.text

    def whole_trace(spans: list[ReceivedSpan]) -> bool:
        root = http_span(spans, "POST", "/api/v1/chat/messages")
        names = {span.name for span in in_trace(spans, root)} if root else set()
        return {*CHAT_PIPELINE, "mongodb.insert", "mongodb.update"} <= names

    try:
        spans = receiver.wait_for(whole_trace, timeout=20)
    except TimeoutError:
        spans = list(receiver.spans)  # the assertions below say which span is missing
    root = http_span(spans, "POST", "/api/v1/chat/messages")
    assert root is not None, sorted({span.name for span in spans})
    trace = in_trace(spans, root)
    names = sorted({span.name for span in trace})
    assert root.parent_span_id is None, "the request starts the trace"
    for name in (*CHAT_PIPELINE, "mongodb.insert", "mongodb.update"):
        found = [span for span in trace if span.name == name]
        assert found, f"no {name} span in the chat trace: {names}"
        for span in found:
            assert_below(span, root, trace)
    writes = [span for span in trace if span.name in ("mongodb.insert", "mongodb.update")]
    assert {span.attributes["db.system"] for span in writes} == {"mongodb"}
    assert all(QUESTION not in str(span.attributes) for span in trace), "no message text in span attributes"

    generate = next(span for span in trace if span.name == "llm.generate")
    usage = response.json()["message"]["usage"]
    assert generate.attributes["gen_ai.request.model"] == MODEL
    assert generate.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert generate.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]


def test_an_upload_s_trace_continues_into_its_ingestion_job(receiver: OtlpReceiver, uploaded: ReceivedSpan) -> None:
    spans = receiver.wait_for(
        lambda spans: any(span.name == "retrieval.ingest" and span.trace_id == uploaded.trace_id for span in spans),
        timeout=20,
    )
    trace = in_trace(spans, uploaded)
    ingest = [span for span in trace if span.name == "retrieval.ingest"]
    assert len(ingest) == 1, sorted({span.name for span in trace})
    assert_below(ingest[0], uploaded, trace)


def test_the_exported_spans_name_the_service(uploaded: ReceivedSpan) -> None:
    assert uploaded.service_name == "medchat"


def test_a_request_s_span_is_named_by_its_route_not_its_ids(
    http: httpx.Client, receiver: OtlpReceiver, uploaded: ReceivedSpan
) -> None:
    document_id = http.get("/api/v1/documents").json()["items"][0]["id"]
    assert http.get(f"/api/v1/documents/{document_id}").status_code == 200

    def named(spans: list[ReceivedSpan]) -> bool:
        return any(span.attributes.get("http.route") == "/api/v1/documents/{document_id}" for span in spans)

    spans = receiver.wait_for(named, timeout=20)
    span = next(span for span in spans if span.attributes.get("http.route") == "/api/v1/documents/{document_id}")
    assert span.name == "GET /api/v1/documents/{document_id}"
    assert document_id not in span.name

"""Model and answer-pipeline metrics and spans, for questions asked through the in-process app.

The model is the real HTTP fake (``tests.support.fake_llm``); metrics are read from the process's
Prometheus registry before and after, spans from an in-memory exporter on the process's tracer provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from medchat.chat.answering.events import Token
from medchat.chat.schemas import MessageCreate
from tests.support.accounts import register
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer, split_tokens
from tests.support.spans import named, only, parent_of, span_recorder

API = "/api/v1/chat"
MODEL = "fake/test-model"
QUESTION = "What blood pressure is too high?"
REPLY = "Blood pressure above 140/90 mmHg is raised [1]."
EMERGENCY = "I have crushing chest pain spreading to my left arm"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def model_samples() -> dict[str, float]:
    """Every model and answer metric these tests look at, for the fake remote model."""
    samples = {
        f"requests_{outcome}": sample("medchat_llm_requests_total", model=MODEL, provider="remote", outcome=outcome)
        for outcome in ("ok", "error", "stopped")
    }
    samples |= {
        f"tokens_{direction}": sample("medchat_llm_tokens_total", model=MODEL, direction=direction)
        for direction in ("input", "output")
    }
    samples |= {
        "duration_observations": sample("medchat_llm_request_duration_seconds_count", model=MODEL),
        "first_token_observations": sample("medchat_llm_time_to_first_token_seconds_count", model=MODEL),
        "upstream_errors": sample("medchat_llm_errors_total", model=MODEL, reason="upstream_error"),
        "answers_complete": sample("medchat_answers_total", status="complete", grounding="ungrounded"),
        "answers_failed": sample("medchat_answers_total", status="failed", grounding="none"),
    }
    return samples


def changes(before: dict[str, float]) -> dict[str, float]:
    """What moved since ``before`` (unchanged metrics left out)."""
    after = model_samples()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def streamed_prompt_tokens(fake_llm: FakeLLMServer) -> int:
    """The prompt tokens the fake reported for its last streamed request (its usage counts word pieces)."""
    body = [request.body for request in fake_llm.chat_requests if request.body and request.body.get("stream")][-1]
    assert body is not None
    return sum(len(split_tokens(str(message.get("content", "")))) for message in body["messages"])


async def test_an_answer_counts_its_model_call_tokens_and_timings(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = lambda body: "Raised blood pressure" if not body.get("stream") else REPLY
    user = await register(remote_client)
    before = model_samples()

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)
    await in_app_loop(remote_client, engine_of(remote_client).wait_background())  # the model-written title

    assert response.status_code == 201, response.text
    assert changes(before) == {
        "requests_ok": 2,  # the answer's stream and the title's completion
        "tokens_input": streamed_prompt_tokens(fake_llm),
        "tokens_output": len(split_tokens(REPLY)),
        "duration_observations": 2,
        "first_token_observations": 1,
        "answers_complete": 1,
    }
    assert sample("medchat_streams_in_flight") == 0


async def test_one_chat_request_is_one_trace_from_the_http_span_to_the_model_call(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    recorder = span_recorder()
    user = await register(remote_client)
    recorder.clear()

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)
    await in_app_loop(remote_client, engine_of(remote_client).wait_background())

    assert response.status_code == 201, response.text
    spans = recorder.get_finished_spans()
    http = next(span for span in spans if span.kind == SpanKind.SERVER and "/chat/messages" in span.name)
    triage, answer, generate = only(spans, "chat.triage"), only(spans, "chat.answer"), only(spans, "llm.generate")
    assert parent_of(triage, spans) is http
    assert parent_of(answer, spans) is http
    assert parent_of(generate, spans) is answer
    assert not [span for span in spans if parent_of(span, spans) is generate], "the model span is a leaf"
    assert {span.context.trace_id for span in (http, triage, answer, generate)} == {http.context.trace_id}

    assert triage.attributes == {"medchat.triage.category": "none"}
    assert answer.attributes["medchat.answer.status"] == "complete"
    usage = response.json()["message"]["usage"]
    assert generate.attributes["gen_ai.request.model"] == MODEL
    assert generate.attributes["gen_ai.system"] == "remote"
    assert (
        generate.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] == streamed_prompt_tokens(fake_llm)
    )
    assert generate.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"] == len(split_tokens(REPLY))
    assert generate.attributes["medchat.time_to_first_token_ms"] >= 0
    assert generate.status.status_code == StatusCode.UNSET
    title = only(spans, "llm.complete")
    assert title.context.trace_id == http.context.trace_id


async def test_a_failing_model_counts_errors_by_reason_and_marks_its_spans(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    recorder = span_recorder()
    user = await register(remote_client)
    fake_llm.fail_with("status_500")
    before = model_samples()
    recorder.clear()

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)
    await in_app_loop(remote_client, engine_of(remote_client).wait_background())  # the title fails too

    assert response.status_code == 503, response.text
    assert changes(before) == {
        "requests_error": 2,
        "upstream_errors": 2,
        "duration_observations": 2,
        "answers_failed": 1,
    }
    spans = recorder.get_finished_spans()
    for span in (only(spans, "llm.generate"), only(spans, "llm.complete")):
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == "upstream_error"
    assert only(spans, "chat.answer").attributes["medchat.answer.status"] == "failed"


@dataclass(frozen=True)
class Asker:
    id: str
    is_admin: bool = False


async def test_a_stopped_answer_is_a_stopped_model_call_not_an_error(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = " ".join(f"word{n}" for n in range(200))
    fake_llm.token_delay = 0.02  # ~4 s in all: the stop comes long before the last token
    user = await register(remote_client)
    engine = engine_of(remote_client)
    first = (await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)).json()
    await in_app_loop(remote_client, engine.wait_background())
    before = model_samples()

    async def ask_then_stop_at_the_first_token() -> tuple[float, str]:
        follow_up = MessageCreate(content="And for children?", conversation_id=first["conversation_id"])
        run = await engine.ask(Asker(user.id), follow_up)
        async for event in run.subscribe():
            if isinstance(event, Token):
                break
        streaming = sample("medchat_streams_in_flight")
        stopped = await engine.stop(user.id, run.message_id)
        return streaming, stopped.status

    streaming, status = await in_app_loop(remote_client, ask_then_stop_at_the_first_token())

    assert (streaming, status) == (1, "failed")
    assert sample("medchat_streams_in_flight") == 0
    moved = changes(before)
    assert moved.pop("requests_stopped") == 1
    assert moved.pop("answers_failed") == 1
    assert moved.pop("first_token_observations") == 1
    # The follow-up's search query may be written by the model first (one more ok call, timed).
    assert moved in ({}, {"requests_ok": 1, "duration_observations": 1})


async def test_triage_counts_an_emergency_and_sources_only_answers_count_as_model_calls(
    client: AsyncTestClient[Litestar],
) -> None:
    recorder = span_recorder()
    user = await register(client)
    emergencies = sample("medchat_triage_outcomes_total", category="emergency")
    answered = sample("medchat_llm_requests_total", model="sources-only", provider="sources-only", outcome="ok")
    recorder.clear()

    response = await client.post(f"{API}/messages", json={"content": EMERGENCY}, headers=user.headers)

    assert response.status_code == 201, response.text
    assert response.json()["user_message"]["safety"]["emergency"] is True
    assert sample("medchat_triage_outcomes_total", category="emergency") == emergencies + 1
    assert sample("medchat_llm_requests_total", model="sources-only", provider="sources-only", outcome="ok") == (
        answered + 1
    )
    spans = recorder.get_finished_spans()
    assert only(spans, "chat.triage").attributes == {"medchat.triage.category": "emergency"}
    assert len(named(spans, "llm.generate")) == 1

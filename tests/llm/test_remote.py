"""The remote provider against a real local HTTP server (tests.support.fake_llm), no mocks."""

from __future__ import annotations

import time

import pytest

from medchat.llm import ContextPassage, GenerationDone, GenerationRequest, TextDelta
from medchat.llm.errors import (
    LLMConnectionFailed,
    LLMRateLimited,
    LLMStreamInterrupted,
    LLMTimeout,
    LLMUnavailable,
    LLMUpstreamError,
)
from medchat.llm.remote import RemoteProvider
from tests.support.fake_llm import FakeLLMServer, closed_port_url, split_tokens
from tests.support.llm import RemoteFactory

pytestmark = pytest.mark.asyncio

REQUEST = GenerationRequest(
    "What counts as high blood pressure?",
    passages=[ContextPassage(1, "Hypertension guideline", 3, "Above 140/90 mmHg on repeated readings.")],
)
REPLY = "High blood pressure is a reading above 140/90 mmHg on repeated measurements [1]."


async def _collect(provider: RemoteProvider, request: GenerationRequest = REQUEST) -> tuple[str, list[object]]:
    events = [event async for event in provider.stream(request)]
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    return text, events


async def test_streams_the_answer_and_records_the_servers_usage(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY

    text, events = await _collect(make_remote(max_output_tokens=256))

    assert text == REPLY
    assert sum(isinstance(event, TextDelta) for event in events) == len(split_tokens(REPLY))
    done = events[-1]
    assert isinstance(done, GenerationDone)
    assert sum(isinstance(event, GenerationDone) for event in events) == 1
    assert done.finish_reason == "stop"
    assert done.model == "test/model"
    assert done.usage.completion_tokens == len(split_tokens(REPLY))
    assert done.usage.prompt_tokens > 0
    body = fake_llm.chat_requests[0].body
    assert body is not None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 256
    assert body["model"] == "test/model"
    assert body["messages"][0]["role"] == "system"
    assert "[1] Hypertension guideline, page 3:" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": REQUEST.question}


async def test_usage_is_estimated_when_the_server_sends_none(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY
    fake_llm.send_usage = False

    _, events = await _collect(make_remote())

    done = events[-1]
    assert isinstance(done, GenerationDone)
    assert done.usage.completion_tokens > 0
    assert done.usage.prompt_tokens > 0


async def test_sends_the_bearer_key_and_openrouter_attribution(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    await _collect(make_remote(app_url="https://clinic.example"))

    request = fake_llm.chat_requests[0]
    assert request.header("Authorization") == "Bearer test-key"
    assert request.header("HTTP-Referer") == "https://clinic.example"
    assert request.header("X-Title") == "medchat"


async def test_server_errors_are_retried_then_reported(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    fake_llm.fail_with("status_500")

    with pytest.raises(LLMUpstreamError) as raised:
        await _collect(make_remote(max_retries=2))

    assert len(fake_llm.chat_requests) == 3
    assert isinstance(raised.value, LLMUnavailable)
    assert raised.value.code == "llm_unavailable"
    assert "failed (HTTP 500, 3 attempts)" in raised.value.detail


async def test_rate_limiting_is_retried_after_the_servers_delay(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.fail_with("status_429")
    fake_llm.retry_after_seconds = 1

    started = time.perf_counter()
    with pytest.raises(LLMRateLimited) as raised:
        await _collect(make_remote(max_retries=1))

    assert time.perf_counter() - started >= 1.0
    assert len(fake_llm.chat_requests) == 2
    assert raised.value.detail == "The language model service is rate limiting requests; try again in 1 second."
    assert raised.value.retry_after == 1
    assert raised.value.headers == {"Retry-After": "1"}


async def test_a_long_retry_after_is_reported_at_once(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    fake_llm.fail_with("status_429")
    fake_llm.retry_after_seconds = 120

    with pytest.raises(LLMRateLimited) as raised:
        await _collect(make_remote(max_retries=2))

    assert len(fake_llm.chat_requests) == 1
    assert "try again in 120 seconds" in raised.value.detail


async def test_a_server_that_never_answers_times_out_after_retries(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.fail_with("hang")

    started = time.perf_counter()
    with pytest.raises(LLMTimeout) as raised:
        await _collect(make_remote(timeout_seconds=0.3, max_retries=2))

    assert len(fake_llm.chat_requests) == 3
    assert time.perf_counter() - started < 5
    assert "did not answer within 0.3 seconds (3 attempts)" in raised.value.detail


async def test_connection_refused_is_reported_after_retries(make_remote: RemoteFactory) -> None:
    with pytest.raises(LLMConnectionFailed) as raised:
        await _collect(make_remote(base_url=closed_port_url(), max_retries=2))

    assert "Could not connect" in raised.value.detail
    assert "(3 attempts)" in raised.value.detail
    assert "MEDCHAT_LLM_BASE_URL" in raised.value.detail


async def test_recovers_when_failures_stop_before_retries_run_out(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY
    fake_llm.fail_with("status_500", times=2)

    text, events = await _collect(make_remote(max_retries=2))

    assert text == REPLY
    assert isinstance(events[-1], GenerationDone)
    assert len(fake_llm.chat_requests) == 3


async def test_one_failure_too_many_is_still_a_failure(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    fake_llm.fail_with("status_500", times=3)

    with pytest.raises(LLMUnavailable):
        await _collect(make_remote(max_retries=2))

    assert len(fake_llm.chat_requests) == 3


async def test_a_stream_cut_after_tokens_is_interrupted_with_the_partial_text_and_not_retried(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY
    fake_llm.cut_after_tokens = 3
    fake_llm.fail_with("cut_stream")
    seen: list[object] = []

    async def consume() -> None:
        async for event in make_remote(max_retries=2).stream(REQUEST):
            seen.append(event)

    with pytest.raises(LLMStreamInterrupted) as raised:
        await consume()

    assert raised.value.partial_text == "".join(split_tokens(REPLY)[:3])
    assert all(isinstance(event, TextDelta) for event in seen)
    assert "".join(event.text for event in seen if isinstance(event, TextDelta)) == raised.value.partial_text
    assert len(fake_llm.chat_requests) == 1


async def test_a_stream_cut_before_any_text_is_retried(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    fake_llm.reply = REPLY
    fake_llm.cut_after_tokens = 0
    fake_llm.fail_with("cut_stream", times=1)

    text, _ = await _collect(make_remote(max_retries=1))

    assert text == REPLY
    assert len(fake_llm.chat_requests) == 2


async def test_a_stream_that_ends_without_finishing_is_interrupted_with_the_partial_text(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    """A clean end of the response with no ``finish_reason`` and no ``[DONE]`` is a cut answer, not a whole one."""
    fake_llm.reply = REPLY
    fake_llm.cut_after_tokens = 2
    fake_llm.fail_with("end_stream")

    with pytest.raises(LLMStreamInterrupted) as raised:
        await _collect(make_remote(max_retries=2))

    assert raised.value.partial_text == "".join(split_tokens(REPLY)[:2])
    assert len(fake_llm.chat_requests) == 1, "text already reached the reader: never retried"


async def test_a_stream_that_ends_before_any_text_is_retried(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY
    fake_llm.cut_after_tokens = 0
    fake_llm.fail_with("end_stream", times=1)

    text, events = await _collect(make_remote(max_retries=1))

    assert text == REPLY
    assert isinstance(events[-1], GenerationDone) and events[-1].finish_reason == "stop"
    assert len(fake_llm.chat_requests) == 2


async def test_a_stream_that_always_ends_before_any_text_is_an_upstream_error(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.cut_after_tokens = 0
    fake_llm.fail_with("end_stream")

    with pytest.raises(LLMUpstreamError):
        await _collect(make_remote(max_retries=1))
    assert len(fake_llm.chat_requests) == 2


async def test_leaving_a_stream_early_leaves_the_provider_usable(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = REPLY
    provider = make_remote()
    stream = provider.stream(REQUEST)
    first = await anext(stream)
    await stream.aclose()

    text, _ = await _collect(provider)

    assert isinstance(first, TextDelta)
    assert text == REPLY


async def test_complete_returns_a_short_non_streamed_answer(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory
) -> None:
    fake_llm.reply = "  Blood pressure thresholds explained in plain words  "

    title = await make_remote().complete("Title for: what is high blood pressure?", max_tokens=4)

    assert title == "Blood pressure thresholds explained"
    body = fake_llm.chat_requests[0].body
    assert body is not None
    assert body["max_tokens"] == 4
    assert not body.get("stream")


async def test_complete_is_retried_like_streaming(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    fake_llm.reply = "A title"
    fake_llm.fail_with("status_500", times=1)

    assert await make_remote(max_retries=1).complete("Title?") == "A title"
    assert len(fake_llm.chat_requests) == 2


async def test_ping_lists_models_and_spends_no_tokens(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    assert await make_remote().ping() is True

    assert [(request.method, request.path) for request in fake_llm.requests] == [("GET", "/v1/models")]


async def test_ping_is_false_when_nothing_listens(make_remote: RemoteFactory) -> None:
    assert await make_remote(base_url=closed_port_url()).ping() is False

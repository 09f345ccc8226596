"""LangSmith tracing: off by default; when on, traces go (redacted) to the configured endpoint."""

from __future__ import annotations

import json

import langsmith
import pytest

from medchat.llm import ContextPassage, GenerationRequest
from medchat.llm.tracing import LangSmithTracer, NoopTracer, make_tracer
from tests.support.fake_llm import FakeLLMServer
from tests.support.llm import RemoteFactory


def test_tracing_is_off_without_the_langsmith_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-test")

    assert isinstance(make_tracer(), NoopTracer)


def test_tracing_is_off_without_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")

    assert isinstance(make_tracer(), NoopTracer)


def test_tracing_is_on_with_switch_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-test")

    assert isinstance(make_tracer(), LangSmithTracer)


@pytest.mark.asyncio
async def test_no_trace_requests_when_tracing_is_off(fake_llm: FakeLLMServer, make_remote: RemoteFactory) -> None:
    async for _ in make_remote(tracer=make_tracer()).stream(GenerationRequest("Q?")):
        pass

    assert [request.path for request in fake_llm.requests] == ["/v1/chat/completions"]


@pytest.mark.asyncio
async def test_traces_are_redacted_before_they_leave(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-test")
    fake_llm.reply = "John Smith has raised blood pressure [1]."
    client = langsmith.Client(
        api_url=fake_llm.base_url.removesuffix("/v1"), api_key="ls-test", auto_batch_tracing=False
    )
    tracer = make_tracer(redact=lambda text: text.replace("John Smith", "[NAME]"), client=client)
    request = GenerationRequest(
        "Does John Smith have hypertension?", passages=[ContextPassage(1, "Note", None, "John Smith: BP 160/100.")]
    )

    async for _ in make_remote(tracer=tracer).stream(request):
        pass

    client.flush(timeout=5)  # langsmith's wait for trace writes still pending (none without batching)
    runs = [request for request in fake_llm.requests if request.path.startswith("/runs")]
    assert [request.method for request in runs] == ["POST", "PATCH"]
    created, finished = (json.loads(request.raw) for request in runs)
    assert created["run_type"] == "llm"
    assert "[NAME]" in json.dumps(created["inputs"])
    assert "[NAME] has raised blood pressure" in json.dumps(finished["outputs"])
    assert all(b"John Smith" not in request.raw for request in runs)
    assert b"John Smith" in fake_llm.chat_requests[0].raw  # the model itself still gets the real text

"""The llm module logs through structlog, like the rest of medchat, so its events get the scrubbed pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from medchat.llm import ContextPassage, GenerationRequest, LLMStreamInterrupted
from medchat.llm import remote as remote_module
from medchat.llm import remote_retries as remote_retries_module
from medchat.llm import tracing as tracing_module
from tests.support.fake_llm import FakeLLMServer, closed_port_url
from tests.support.llm import RemoteFactory

REQUEST = GenerationRequest(
    "What counts as high blood pressure?",
    passages=[ContextPassage(1, "Hypertension guideline", 3, "Above 140/90 mmHg on repeated readings.")],
)


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Each module's ``log``, fresh inside ``capture_logs`` (a configured structlog caches bound loggers)."""
    with capture_logs() as captured:
        for module in (remote_module, remote_retries_module, tracing_module):
            monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
        yield captured


def _events(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["log_level"], entry["event"]) for entry in logs]


@pytest.mark.asyncio
async def test_a_retry_is_a_warning(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory, logs: list[dict[str, Any]]
) -> None:
    fake_llm.reply = "Above 140/90 mmHg [1]."
    fake_llm.fail_with("status_500", times=1)

    [_ async for _ in make_remote(max_retries=1).stream(REQUEST)]

    assert _events(logs) == [("warning", "llm request failed; retrying")]
    assert logs[0]["attempt"] == 1
    assert logs[0]["error"] == "InternalServerError"


@pytest.mark.asyncio
async def test_an_interrupted_stream_is_a_warning(
    fake_llm: FakeLLMServer, make_remote: RemoteFactory, logs: list[dict[str, Any]]
) -> None:
    fake_llm.reply = "High blood pressure is a reading above 140/90 mmHg [1]."
    fake_llm.cut_after_tokens = 3
    fake_llm.fail_with("cut_stream")

    with pytest.raises(LLMStreamInterrupted) as raised:
        [_ async for _ in make_remote(max_retries=1).stream(REQUEST)]

    assert _events(logs) == [("warning", "llm stream interrupted")]
    assert logs[0]["characters"] == len(raised.value.partial_text)


@pytest.mark.asyncio
async def test_a_failed_ping_is_a_debug_line(make_remote: RemoteFactory, logs: list[dict[str, Any]]) -> None:
    assert await make_remote(base_url=closed_port_url()).ping() is False

    assert _events(logs) == [("debug", "llm ping failed")]


def test_a_failing_langsmith_is_a_warning(monkeypatch: pytest.MonkeyPatch, logs: list[dict[str, Any]]) -> None:
    def broken(**_: object) -> object:
        raise RuntimeError("langsmith is down")

    monkeypatch.setattr(tracing_module.langsmith, "tracing_context", broken)
    tracer = tracing_module.LangSmithTracer(client=object())  # type: ignore[arg-type]

    with tracer.generation(provider="openai", model="m", messages=[{"role": "user", "content": "hi"}]) as trace:
        trace.add_text("answer")

    assert _events(logs) == [("warning", "LangSmith tracing failed; continuing without a trace")]
    assert logs[0]["exc_info"] is True, "the traceback is kept"

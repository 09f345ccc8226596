"""Protected health information through the real app: never in logs or LangSmith traces; kept from a
remote model when ``redact_phi_for_llm`` is on, and put back in the answer the user sees."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import langsmith
import langsmith.run_trees
import langsmith.utils
import pytest
import structlog
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.platform import logging as platform_logging
from medchat.retrieval import Passage, SearchScope
from medchat.settings import Settings
from tests.support.accounts import register
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer
from tests.support.sse import parse_sse

API = "/api/v1/chat"
EMAIL = "jo.bloggs@example.org"
PHONE = "07700 900123"
QUESTION = f"My mother has a fever since Monday, can you email {EMAIL} or call me on {PHONE}?"


class EchoingBrokenIndex:
    """A vector store that fails with the query in its error message, as real clients' errors often do."""

    async def search(self, query: str, *, scope: SearchScope, top_k: int | None = None) -> list[Passage]:
        raise RuntimeError(f"index unavailable while searching for {query!r}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """structlog and the root logger are process-wide: put them back after the test."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    structlog.configure(**saved_config)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def langsmith_to_fake(fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """LangSmith tracing switched on through its own variables, its endpoint the fake server (which records posts).

    langsmith caches its environment and its default client per process: both are reset around the test.
    """
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-test")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", fake_llm.base_url.removesuffix("/v1"))
    langsmith.utils.get_env_var.cache_clear()
    monkeypatch.setattr(langsmith.run_trees, "_CLIENT", None)
    yield fake_llm
    client = langsmith.run_trees._CLIENT
    if client is not None:
        client.flush()
    langsmith.utils.get_env_var.cache_clear()


def trace_posts(fake_llm: FakeLLMServer) -> bytes:
    """Everything LangSmith sent (run creates and updates, batched or not)."""
    return b"".join(r.raw for r in fake_llm.requests if not r.path.startswith("/v1/") and r.method in ("POST", "PATCH"))


@pytest.mark.usefixtures("restore_logging")
async def test_a_message_with_an_email_and_a_phone_number_leaves_neither_in_logs_nor_traces(
    remote_settings: Settings, langsmith_to_fake: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_llm = langsmith_to_fake
    fake_llm.reply = "A fever that lasts more than three days needs a doctor's review."
    settings = remote_settings.model_copy(update={"log_format": "json", "log_level": "INFO"})
    # The app is created here, not in a fixture, so that its log handler writes to the captured stderr.
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.app.state.runtime.retriever = EchoingBrokenIndex()
        user = await register(client)
        response = await client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)
        assert response.status_code == 201, response.text
        assert response.json()["user_message"]["content"] == QUESTION, "the user's own record keeps the text"
        await in_app_loop(client, engine_of(client).wait_background())  # the model-written title, traced too
        # Every run has ended (its outputs were queued); flushing waits until LangSmith has sent them all.
        langsmith.run_trees.get_cached_client().flush()
        traced = trace_posts(fake_llm)

    # The model itself got the question (redaction for the model is off by default)...
    assert EMAIL.encode() in next(r.raw for r in fake_llm.chat_requests if r.body and r.body.get("stream"))
    # ...but the trace of that generation did not: it carries the placeholders instead.
    assert b"needs a doctor" in traced, "LangSmith received the whole trace"
    assert b"[EMAIL]" in traced and b"[PHONE]" in traced, "the trace is readable and redacted"
    assert EMAIL.encode() not in traced
    assert PHONE.encode() not in traced and b"900123" not in traced

    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("event") == "retrieval failed; answering without sources"]
    assert failed, f"the index's failure is logged: {err[-2000:]}"
    assert "[EMAIL]" in failed[0]["error"] and "[PHONE]" in failed[0]["error"]
    assert EMAIL not in err
    assert PHONE not in err and "900123" not in err
    assert platform_logging._scrubbers, "the app registered the PHI scrubber"


async def test_with_redaction_for_the_model_placeholders_stream_back_as_the_originals(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    # The fake streams word-sized tokens: "[PHONE_1]," and "[EMAIL_1]" arrive inside tokens of their own,
    # and the restorer must hold back a placeholder split over two of them.
    fake_llm.reply = "We will call [PHONE_1], then write to [EMAIL_1] about Monday."
    settings = remote_settings.model_copy(update={"redact_phi_for_llm": True})
    async with AsyncTestClient(app=create_app(settings)) as client:
        user = await register(client)
        response = await client.post(
            f"{API}/messages",
            json={"content": QUESTION},
            headers={**user.headers, "Accept": "text/event-stream"},
        )
        events = parse_sse(response.text)
        streamed = "".join(data["text"] for name, data in events if name == "token")
        done = events[-1][1]["message"]
        stored = (await client.get(f"{API}/conversations/{done['conversation_id']}", headers=user.headers)).json()
        await in_app_loop(client, engine_of(client).wait_background())  # the model-written title

    expected = f"We will call {PHONE}, then write to {EMAIL} about Monday."
    assert streamed == expected, "no placeholder reaches the user, even mid-stream"
    assert done["content"] == expected
    assert stored["messages"][-1]["content"] == expected
    assert stored["messages"][0]["content"] == QUESTION
    sent = [r for r in fake_llm.chat_requests if r.body and r.body.get("stream")]
    assert EMAIL.encode() not in sent[0].raw and b"900123" not in sent[0].raw
    assert "[EMAIL_1]" in sent[0].body["messages"][-1]["content"]
    assert "[PHONE_1]" in sent[0].body["messages"][-1]["content"]
    titles = [r for r in fake_llm.chat_requests if r.body and not r.body.get("stream")]
    assert titles, "a title was asked for"
    assert all(EMAIL.encode() not in r.raw and b"900123" not in r.raw for r in titles), "the title prompt too"

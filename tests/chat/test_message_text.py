"""Text people read around answers: titles without Markdown, error sentences that start with a capital, the
emergency notice said once, and the answer streamed as rendered HTML (paced) by the page's stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.chat.answering import heuristic_title
from medchat.chat.answering.titles import plain_title
from medchat.chat.live import LiveAnswer, with_ticks
from medchat.chat.markdown import render_markdown
from medchat.chat.safety.notices import build_notice
from medchat.chat.services import clean_title
from tests.support.accounts import register
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize(
    ("written", "title"),
    [
        ("Gout** usually causes: - …", "Gout usually causes…"),
        ("**Gout** and diet", "Gout and diet"),
        ("# Title: Statins and you", "Statins and you"),
        ("- Asthma in children\n- and more", "Asthma in children and more"),
        ("[Warfarin](https://example.org) and _vitamin K_", "Warfarin and vitamin K"),
        ("`HbA1c` targets:", "HbA1c targets"),
        ("COVID-19 vaccine - dosing", "COVID-19 vaccine - dosing"),
        ("snake_case stays", "snake_case stays"),
    ],
)
def test_model_titles_keep_no_markdown(written: str, title: str) -> None:
    assert clean_title(plain_title(written)) == title


def test_heuristic_titles_keep_no_markdown() -> None:
    assert heuristic_title("**What** is `gout`?") == "What is gout?"


async def test_a_model_written_title_in_markdown_is_stored_plain(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = lambda body: "Gout** usually causes: - …" if not body.get("stream") else "Joint pain [1]."
    user = await register(remote_client)
    turn = (
        await remote_client.post(
            "/api/v1/chat/messages", json={"content": "What does gout cause?"}, headers=user.headers
        )
    ).json()
    await in_app_loop(remote_client, engine_of(remote_client).wait_background())  # the title is written after
    stored = await remote_client.get(f"/api/v1/chat/conversations/{turn['conversation_id']}", headers=user.headers)
    assert stored.json()["title"] == "Gout usually causes…"


def templates() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    environment.globals.update(csrf_token=lambda: "token", static=lambda path: f"/static/{path}")
    return environment


def test_an_error_sentence_after_a_full_stop_starts_with_a_capital() -> None:
    class Refused:
        code = "unsupported_media_type"
        title = "Unsupported media type"
        detail = "unsupported file type: expected PDF, DOCX or plain text"

    upload = templates().get_template("retrieval/_document_list.html").render(upload_error=Refused(), documents=[])
    assert "<strong>Upload refused.</strong> Unsupported file type: expected PDF, DOCX or plain text" in upload
    error = templates().get_template("_error.html").render(error=Refused())
    assert "<strong>Unsupported media type.</strong> Unsupported file type: expected PDF" in error


def test_the_emergency_notice_says_its_headline_once() -> None:
    safety = {"emergency": True, "notice": build_notice(["cardiac"], emergency_number="112")}
    message = {"safety": safety}
    html = templates().get_template("chat/_safety.html").render(message=message)
    assert html.count("This may be an emergency") == 1
    assert "<strong>This may be an emergency. Call 112 now, or go to the nearest emergency department.</strong>" in html
    assert "Stop and sit down while you wait" in html
    assert 'role="alert"' in html


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_live_answer_is_rendered_as_the_stored_one_at_most_every_interval() -> None:
    clock = Clock()
    live = LiveAnswer(interval=0.08, clock=clock)
    live.cite("abc", 1)
    assert live.add("Gout causes **sudden") == render_markdown("Gout causes **sudden"), "the first token at once"
    clock.now = 0.05
    assert live.add(" pain** [1]") is None, "too soon after the last one"
    clock.now = 0.09
    html = live.add(".")
    text = "Gout causes **sudden pain** [1]."
    assert html == str(render_markdown(text, citation_prefix="src-abc", source_count=1))
    assert "<strong>sudden pain</strong>" in html and 'href="#src-abc-1"' in html
    assert live.flush() is None, "nothing new to send"
    clock.now = 0.1
    assert live.add(" <script>alert(1)</script>") is None
    flushed = live.flush()  # what the stream sends when no token came for an interval
    assert flushed is not None and "<script>" not in flushed and "&lt;script&gt;" in flushed, "sanitised"


async def test_ticks_come_between_slow_events_and_the_events_all_arrive() -> None:
    async def slow() -> AsyncIterator[str]:
        for word in ("a", "b"):
            await asyncio.sleep(0.05)
            yield word

    seen: list[Any] = [event async for event in with_ticks(slow(), interval=0.01)]
    assert [event for event in seen if event is not None] == ["a", "b"]
    assert None in seen, "a tick while waiting"

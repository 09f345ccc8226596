"""The chat in a real browser against a real ``medchat serve`` whose model is the fake OpenAI-compatible server.

Ask and watch the answer stream, reload and find it again; edit a question and switch branches; export;
a failing model shows an error with Retry; Stop keeps what was written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess

PASSWORD = "browser test password 42"
TITLE = "Blood pressure thresholds"
REPLY = "High blood pressure is **140/90 mmHg** or more, measured on several days [1]. " + " ".join(
    f"More{n}." for n in range(30)
)


def reply(body: dict[str, Any]) -> str:
    """The answer for streamed requests; a title for the short non-streamed one."""
    return REPLY if body.get("stream") else TITLE


@pytest.fixture(scope="module")
def chat_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply, token_delay=0.03) as server:
        yield server


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory, chat_llm: FakeLLMServer) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": chat_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/chat",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-chat") / "data", extra_env=env) as server:
        yield server


@pytest.fixture
def llm(chat_llm: FakeLLMServer) -> Iterator[FakeLLMServer]:
    chat_llm.fail_with(None)
    chat_llm.reply = reply
    chat_llm.token_delay = 0.03
    yield chat_llm
    chat_llm.fail_with(None)


@pytest.fixture
def chat(page: Page, chat_server: ServeProcess) -> Iterator[Page]:
    """A newly registered user on an empty chat page; fails the test on any console error (CSP included)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    base = chat_server.base_url
    page.goto(f"{base}/register")
    page.get_by_label("Full name").fill("Chat Tester")
    page.get_by_label("Email").fill(f"chat-{uuid.uuid4().hex[:8]}@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).not_to_have_url(re.compile(r"/register"))
    page.goto(f"{base}/chat")
    expect(page.get_by_role("heading", level=1)).to_have_text("New conversation")
    yield page
    unexpected = [error for error in errors if "503" not in error]
    assert unexpected == [], f"console errors: {unexpected}"


def ask(page: Page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")


def test_ask_see_tokens_stream_reload_and_find_the_answer(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    box = page.get_by_role("textbox", name="Your question")
    box.fill("First line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("First line\nsecond line")
    expect(page.locator("article.message")).to_have_count(0)

    box.fill("What counts as high blood pressure?")
    box.press("Enter")
    expect(box).to_have_value("")
    streaming = page.locator("article.message.assistant.streaming")
    expect(streaming).to_be_visible()
    expect(streaming.locator(".stream-text")).to_contain_text("High blood pressure")
    expect(streaming.get_by_role("button", name="Stop")).to_be_visible()
    partial = streaming.locator(".stream-text").inner_text()
    assert "More29." not in partial, "tokens appear while the answer is still being written"

    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_be_visible()
    expect(answer.locator("strong")).to_have_text("140/90 mmHg")
    expect(answer).to_contain_text("More29.")
    expect(answer.locator(".model-label")).to_have_text(re.compile("fake/chat"))
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{24}$"))
    expect(page.get_by_role("navigation", name="Your conversations")).to_contain_text(TITLE)

    page.reload()
    expect(page.locator("article.message.user")).to_contain_text("What counts as high blood pressure?")
    expect(page.locator("article.message.assistant.complete strong")).to_have_text("140/90 mmHg")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)


def test_edit_makes_a_branch_and_the_switcher_moves_between_them(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    llm.token_delay = 0.0
    ask(page, "What is asthma?")
    expect(page.locator("article.message.assistant.complete")).to_be_visible()

    question = page.locator("article.message.user")
    question.get_by_text("Edit", exact=True).click()
    editor = question.get_by_label("Edit your question")
    editor.fill("What is COPD?")
    question.get_by_role("button", name="Save and ask").click()

    expect(page.locator("article.message.user")).to_contain_text("What is COPD?")
    expect(page.locator("article.message.assistant.complete")).to_be_visible()
    switcher = page.locator("article.message.user .switcher")
    expect(switcher).to_contain_text("2 / 2")

    switcher.get_by_role("button", name="Previous version").click()
    expect(page.locator("article.message.user")).to_contain_text("What is asthma?")
    expect(page.locator("article.message.user .switcher")).to_contain_text("1 / 2")
    page.reload()
    expect(page.locator("article.message.user")).to_contain_text("What is asthma?")


def test_export_links_download_the_conversation(chat: Page, llm: FakeLLMServer, tmp_path: Path) -> None:
    page = chat
    llm.token_delay = 0.0
    ask(page, "What is gout?")
    expect(page.locator("article.message.assistant.complete")).to_be_visible()
    with page.expect_download() as markdown:
        page.get_by_role("link", name="Export Markdown").click()
    assert markdown.value.suggested_filename.endswith(".md")
    saved = tmp_path / "export.md"
    markdown.value.save_as(saved)
    text = saved.read_text()
    assert text.startswith(f"# {TITLE}") and "What is gout?" in text and "140/90 mmHg" in text
    with page.expect_download() as as_json:
        page.get_by_role("link", name="Export JSON").click()
    assert as_json.value.suggested_filename.endswith(".json")


def test_a_failing_model_shows_an_error_and_retry_answers(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    llm.token_delay = 0.0
    llm.fail_with("status_500")
    ask(page, "What is anaemia?")
    failed = page.locator("article.message.assistant.failed")
    expect(failed.get_by_role("alert")).to_contain_text("could not be completed")
    expect(failed.get_by_role("alert")).to_contain_text("Your question is saved")
    expect(page.locator("article.message.user")).to_contain_text("What is anaemia?")

    llm.fail_with(None)
    failed.get_by_role("button", name="Retry").click()
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_contain_text("140/90 mmHg")
    expect(answer.locator(".switcher")).to_contain_text("2 / 2")


def test_stop_keeps_the_partial_answer(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    llm.token_delay = 0.15
    ask(page, "Tell me everything about blood pressure")
    streaming = page.locator("article.message.assistant.streaming")
    expect(streaming.locator(".stream-text")).to_contain_text("High blood")
    streaming.get_by_role("button", name="Stop").click()
    stopped = page.locator("article.message.assistant.failed")
    expect(stopped).to_contain_text("You stopped this answer.")
    expect(stopped.get_by_role("button", name="Retry")).to_be_visible()
    expect(stopped).to_contain_text("High blood")


def test_an_emergency_shows_the_notice_above_the_answer_from_the_first_moment(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    expect(page.locator("#scope-notice")).to_contain_text("medchat informs; it does not diagnose.")
    expect(page.get_by_role("region", name="Your limits")).to_contain_text("Questions this hour")
    llm.token_delay = 0.05
    ask(page, "I have crushing chest pain right now and my left arm is numb")

    streaming = page.locator("article.message.assistant.streaming")
    notice = streaming.locator(".alert-emergency")
    expect(notice).to_be_visible()
    assert "More29." not in streaming.locator(".stream-text").inner_text(), "shown while the answer is still coming"
    expect(notice).to_have_attribute("role", "alert")
    expect(notice).to_contain_text("This may be an emergency. Call 112 now")

    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_contain_text("More29.")
    notice_box = answer.locator(".alert-emergency").bounding_box()
    body_box = answer.locator(".answer-body").bounding_box()
    assert notice_box is not None and body_box is not None
    assert notice_box["y"] + notice_box["height"] <= body_box["y"], "the notice sits above the generated text"
    limits = page.get_by_role("region", name="Your limits")
    expect(limits).to_contain_text("59 of 60 left")  # refreshed as the question went out
    expect(limits).not_to_contain_text("200,000 of 200,000 left")  # and after the answer, its tokens counted

    page.reload()
    reloaded = page.locator("article.message.assistant.complete")
    expect(reloaded.locator(".alert-emergency")).to_contain_text("Call 112 now")
    top = reloaded.locator(".alert-emergency").bounding_box()
    body = reloaded.locator(".answer-body").bounding_box()
    assert top is not None and body is not None and top["y"] < body["y"]

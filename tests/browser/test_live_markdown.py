"""Answers in a real browser: Markdown rendered while it streams, in the same element from the first token to the
finished answer; the stored answer renders the same after a reload; an emergency shows one clear notice first.

The model is the fake OpenAI-compatible server, slowed down (``TOKEN_DELAY`` a token) so the answer is seen
half-written; the emergency tests run against a server without a model (sources only, an empty knowledge
base), whose answer is the "Not covered" one, under which the "Not backed by sources" note also shows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.browser import BROWSER_PASSWORD, Account, sign_in_through_the_form
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess

TOKEN_DELAY = 0.15
TITLE = "Gout and its signs"
REPLY = (
    "Gout usually causes **sudden joint pain**, often at night [1]. Common signs:\n\n"
    "- swelling of the joint\n- redness\n- warmth\n\n"
    "It is treated with anti-inflammatory medicines and, over time, by lowering uric acid. "
    + " ".join(f"Detail{n}." for n in range(16))
)
EMERGENCY_QUESTION = "I have crushing chest pain right now and my left arm is numb"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def reply(body: dict[str, Any]) -> str:
    """The answer for streamed requests; a title for the short non-streamed one."""
    return REPLY if body.get("stream") else TITLE


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply, token_delay=TOKEN_DELAY) as server:
        yield server


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, slow_llm: FakeLLMServer) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": slow_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/chat",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-live-md") / "data", extra_env=env) as server:
        yield server


@pytest.fixture(scope="module")
def sources_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """No language model and an empty knowledge base of its own: every answer is "Not covered"."""
    env = {"MEDCHAT_LLM_PROVIDER": "sources-only"}
    with ServeProcess(tmp_path_factory.mktemp("browser-sources-only") / "data", extra_env=env) as server:
        yield server


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest, page: Page) -> str:
    page.set_viewport_size(VIEWPORTS[request.param])
    return str(request.param)


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    """Fails the test on any console error (a CSP violation, an htmx swap error)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield errors
    assert errors == [], f"console errors: {errors}"


def open_chat(page: Page, server: ServeProcess) -> str:
    """A newly registered user, signed in through the form, on an empty chat page; returns its bearer token."""
    email = f"live-{uuid.uuid4().hex[:10]}@example.org"
    response = httpx.post(
        f"{server.base_url}/api/v1/auth/register",
        json={"email": email, "password": BROWSER_PASSWORD, "full_name": "Live Reader"},
    )
    assert response.status_code == 201, response.text
    account = Account(response.json()["user"]["id"], email, BROWSER_PASSWORD, "Live Reader")
    sign_in_through_the_form(page, server.base_url, account)
    page.goto(f"{server.base_url}/chat")
    return str(response.json()["access_token"])


def ask(page: Page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")


def no_sideways_scroll(page: Page, viewport: str) -> None:
    width = VIEWPORTS[viewport]["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"


def body_top(answer: Locator) -> float:
    """Where the answer body starts inside its answer (not moved by the page scrolling)."""
    return float(
        answer.evaluate(
            "el => el.querySelector('.answer-body').getBoundingClientRect().top - el.getBoundingClientRect().top"
        )
    )


def test_markdown_renders_while_streaming_in_the_same_element(
    page: Page,
    model_server: ServeProcess,
    slow_llm: FakeLLMServer,
    viewport: str,
    console_errors: list[str],
    tmp_path: Path,
) -> None:
    open_chat(page, model_server)
    ask(page, "What does gout usually cause?")

    streaming = page.locator("article.message.assistant.streaming")
    body = streaming.locator(".answer-body")
    expect(body).to_contain_text("Gout")
    answer_id = streaming.get_attribute("id")
    assert answer_id
    # The first token is there: mark the body and the answer (JS properties, lost if the element is replaced).
    body.evaluate("el => { el.__probe = 'first token'; el.closest('article').__probe = 'first token'; }")
    top_while_streaming = body_top(streaming)

    # Markdown is rendered while the answer is being written: bold, then the list, with no raw Markdown left.
    expect(body.locator("strong")).to_have_text("sudden joint pain")
    expect(streaming.get_by_role("button", name="Stop")).to_be_visible()
    expect(body.locator("li").first).to_have_text("swelling of the joint")
    assert page.locator(f"#{answer_id}.streaming").count() == 1, "the list showed before the answer ended"
    expect(streaming.get_by_role("button", name="Stop")).to_be_visible()
    text_so_far = body.inner_text()
    assert "**" not in text_so_far and "- swelling" not in text_so_far, text_so_far
    assert "Detail15." not in text_so_far, "seen half-written"
    # Kept in the test's tmp_path for a look (pytest-playwright empties test-results/ at each run).
    page.screenshot(path=str(tmp_path / f"answer-streaming-{viewport}.png"), animations="disabled")

    finished = page.locator(f"#{answer_id}.complete")
    expect(finished).to_contain_text("Detail15.", timeout=30_000)
    finished_body = finished.locator(".answer-body")
    assert finished_body.evaluate("el => el.__probe") == "first token", "the body was patched, not replaced"
    assert finished.evaluate("el => el.__probe") == "first token", "the answer was morphed, not replaced"
    assert abs(body_top(finished) - top_while_streaming) < 1, "the text did not move when the answer finished"
    expect(finished_body.locator("strong")).to_have_text("sudden joint pain")
    expect(finished.get_by_role("button", name="Regenerate")).to_be_visible()
    expect(finished.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.locator("#conversation-list")).to_contain_text(TITLE)  # in the closed drawer on a phone
    live_text = finished_body.text_content()
    live_items = finished_body.locator("li").all_text_contents()
    no_sideways_scroll(page, viewport)

    # The stored answer, after a reload, renders the same.
    page.reload()
    stored = page.locator(f"#{answer_id}.complete .answer-body")
    expect(stored.locator("strong")).to_have_text("sudden joint pain")
    assert stored.text_content() == live_text
    assert stored.locator("li").all_text_contents() == live_items == ["swelling of the joint", "redness", "warmth"]

    # The finished answer's controls work after the morph: Regenerate streams a second version.
    page.locator(f"#{answer_id}").get_by_role("button", name="Regenerate").click()
    regenerated = page.locator("article.message.assistant.complete .switcher")
    expect(regenerated).to_contain_text("2 / 2", timeout=30_000)


def test_stop_keeps_the_rendered_partial_answer_in_place(
    page: Page, model_server: ServeProcess, slow_llm: FakeLLMServer, console_errors: list[str]
) -> None:
    open_chat(page, model_server)
    ask(page, "Tell me about gout")
    streaming = page.locator("article.message.assistant.streaming")
    body = streaming.locator(".answer-body")
    expect(body.locator("strong")).to_have_text("sudden joint pain")
    body.evaluate("el => { el.__probe = 'before stop'; }")
    streaming.get_by_role("button", name="Stop").click()
    stopped = page.locator("article.message.assistant.failed")
    expect(stopped).to_contain_text("You stopped this answer.")
    expect(stopped.locator(".answer-body strong")).to_have_text("sudden joint pain")
    assert stopped.locator(".answer-body").evaluate("el => el.__probe") == "before stop"
    expect(stopped.get_by_role("button", name="Retry")).to_be_visible()


def emergency_checks(answer: Locator) -> None:
    """One notice, first, its headline said once; the notes under it quieter than it."""
    notice = answer.locator(".alert-emergency")
    expect(notice).to_have_count(1)
    expect(notice).to_have_attribute("role", "alert")
    expect(notice).to_contain_text("This may be an emergency. Call 112 now, or go to the nearest emergency department.")
    text = answer.inner_text()
    assert text.count("This may be an emergency") == 1, text
    assert text.count("Call 112 now") == 1, text
    assert answer.evaluate("el => el.firstElementChild.classList.contains('alert-emergency')"), "the notice is first"
    expect(notice.locator("strong")).to_contain_text("Call 112 now")

    def font_size(locator: Locator) -> float:
        return float(locator.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))

    loud = font_size(notice.locator("strong"))
    for quiet in (answer.locator(".answer-body"), answer.locator(".ungrounded")):
        expect(quiet).to_be_visible()
        assert font_size(quiet) < loud, "the other notes are quieter than the notice"
        below = quiet.bounding_box()
        above = notice.bounding_box()
        assert below is not None and above is not None and above["y"] + above["height"] <= below["y"]
    expect(answer.locator(".answer-body")).to_contain_text("Not covered")
    expect(answer.locator(".ungrounded")).to_contain_text("Not backed by your organisation's sources")
    ungrounded_background = answer.locator(".ungrounded").evaluate("el => getComputedStyle(el).backgroundColor")
    assert ungrounded_background in ("rgba(0, 0, 0, 0)", "transparent"), "no second coloured box under the notice"


def test_an_emergency_shows_one_clear_notice_first_and_the_notes_quietly(
    page: Page, sources_only_server: ServeProcess, viewport: str, console_errors: list[str], tmp_path: Path
) -> None:
    open_chat(page, sources_only_server)
    ask(page, EMERGENCY_QUESTION)
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_contain_text("Not covered")
    emergency_checks(answer)
    no_sideways_scroll(page, viewport)
    answer.screenshot(path=str(tmp_path / f"emergency-{viewport}.png"), animations="disabled")

    page.reload()
    emergency_checks(page.locator("article.message.assistant.complete"))
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{24}$"))


CUT_NOTE = (
    "Gout and drinks. People with gout should drink plenty of water and limit beer and spirits, which raise uric "
    "acid. Cherry juice may help some people, but the evidence for cherries is still limit"
)
"""A passage that stops mid-word ("limit" of "limited"), as a passage cut from a longer text can."""


def test_the_citation_panel_ends_a_cut_passage_at_a_word_with_an_ellipsis(
    page: Page, sources_only_server: ServeProcess, console_errors: list[str]
) -> None:
    base = sources_only_server.base_url
    token = open_chat(page, sources_only_server)
    uploaded = httpx.post(
        f"{base}/api/v1/documents",
        files={"file": ("gout-drinks.txt", CUT_NOTE.encode(), "text/plain")},
        data={"scope": "private"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert uploaded.status_code == 202, uploaded.text
    page.goto(f"{base}/documents")
    row = page.locator(f"#document-{uploaded.json()['id']}")
    expect(row).to_have_attribute("data-status", "ready", timeout=90_000)

    page.goto(f"{base}/chat")
    ask(page, "Should people with gout drink beer or cherry juice?")
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_be_visible(timeout=30_000)
    answer.locator("a.cite").first.click()
    passage = page.get_by_role("dialog").locator(".citation-panel-passage p").last
    expect(passage).to_be_visible()
    expect(passage).to_have_text(re.compile(r"the evidence for cherries is still …$"))
    expect(passage).not_to_contain_text("still limit")

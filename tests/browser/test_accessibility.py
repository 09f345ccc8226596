"""Every page passes axe-core (vendored) with no serious or critical violation, and fits a phone without sideways
scrolling, at desktop 1280x800 and phone 390x844.

Pages: sign-in, registration and the 404 page signed out; then, as an admin, the empty chat, a conversation
with an answer (checked while it streams, when done, with the citation panel open and, on a phone, with the
conversation drawer open), the knowledge base, the extracted-text page, the profile, admin users, audit, API keys
and the 404 page signed in. A real ``medchat serve`` answers from the fake OpenAI-compatible model, slowed down so
the answer is seen half-written, and cites a document of the knowledge base.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support import files
from tests.support.accessibility import assert_accessible
from tests.support.browser import Site, bearer_headers, create_admin, sign_in_through_the_form
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess
from tests.support.site_pages import NOT_FOUND_PATH, SIGNED_IN_PAGES, SIGNED_OUT_PAGES, VIEWPORTS

TITLE = "Gout flare treatment"
DOCUMENT = "gout-flare-guideline.txt"
GUIDELINE = (
    "Gout flare guideline. For an acute gout flare give naproxen 500 mg twice a day with food for five days. "
    "Colchicine is the alternative when naproxen is not tolerated. Rest and raise the affected joint.\n\n"
) * 6
QUESTION = "What helps a gout flare?"
REPLY = "For a gout flare, **naproxen** 500 mg twice a day with food is the usual first choice [1]. " + " ".join(
    f"Step{n}." for n in range(40)
)
NOT_FOUND_LOAD = rf"status of 404 .*{re.escape(NOT_FOUND_PATH)}"
"""Chromium logs the 404 page's own status as a console error; the page is opened on purpose."""


def reply(body: dict[str, Any]) -> str:
    """The answer for streamed requests; a title for the short non-streamed one."""
    return REPLY if body.get("stream") else TITLE


@pytest.fixture(scope="module")
def a11y_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply, token_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, a11y_llm: FakeLLMServer) -> Iterator[Site]:
    """The server, an admin made as an operator makes one, a document, an API key and a conversation."""
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": a11y_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/a11y",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-a11y") / "data", extra_env=env) as server:
        base = server.base_url
        admin = create_admin(server, email=f"admin-a11y-{uuid.uuid4().hex[:10]}@example.org")
        headers = bearer_headers(base, admin)
        key = httpx.post(
            f"{base}/api/v1/users/me/api-keys", json={"name": "ward laptop", "expires_in_days": 30}, headers=headers
        )
        assert key.status_code == 201, key.text
        uploaded = httpx.post(
            f"{base}/api/v1/documents/",
            files={"file": (DOCUMENT, GUIDELINE.encode(), "text/plain")},
            data={"scope": "private"},
            headers=headers,
        )
        assert uploaded.status_code == 202, uploaded.text
        asked = httpx.post(
            f"{base}/api/v1/chat/messages", json={"content": "Is gout painful?"}, headers=headers, timeout=60
        )
        assert asked.status_code == 201, asked.text
        yield Site(server, admin, asked.json()["conversation_id"])


@pytest.fixture(params=list(VIEWPORTS))
def size(request: pytest.FixtureRequest, page: Page) -> str:
    page.set_viewport_size(VIEWPORTS[request.param])
    return str(request.param)


def scroll_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def check(page: Page, label: str) -> None:
    """No serious or critical axe violation, and (on every viewport) no sideways scrolling."""
    assert_accessible(page, label)
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert scroll_width(page) <= width, f"{label}: {scroll_width(page)} px wide at {width} px"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("main h1").first).to_be_visible()


def open_drawer(page: Page) -> None:
    """On a phone the conversation list is a drawer behind a button; open it (a no-op where it shows already)."""
    search = page.get_by_role("searchbox", name="Search conversations")
    if not search.is_visible():
        toggle = page.get_by_role("button", name=re.compile("conversations", re.I)).first
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(search).to_be_visible()
    expect(page.get_by_role("navigation", name="Your conversations")).to_be_visible()


@pytest.mark.expected_console_errors(NOT_FOUND_LOAD)
def test_signed_out_pages(page: Page, site: Site, size: str) -> None:
    for name, path in SIGNED_OUT_PAGES.items():
        open_page(page, site.base + path)
        check(page, f"{name} ({size})")


@pytest.mark.expected_console_errors(NOT_FOUND_LOAD)
def test_signed_in_pages(page: Page, site: Site, size: str) -> None:
    sign_in_through_the_form(page, site.base, site.admin)
    for name, path in SIGNED_IN_PAGES.items():
        open_page(page, site.base + path.format(conversation_id=site.conversation_id))
        if name == "chat":
            expect(page.locator("article.message.assistant.complete")).to_be_visible()
        if name == "knowledge-base":
            expect(page.locator("#document-list tr[data-status]", has_text=DOCUMENT)).to_be_visible()
        if name in {"admin-users", "audit", "api-keys"}:
            expect(page.locator("main tbody tr").first).to_be_visible()
        check(page, f"{name} ({size})")
        if name == "chat-empty" and size == "phone":
            open_drawer(page)
            check(page, f"chat drawer ({size})")


def test_a_streamed_answer_and_its_citation_panel(page: Page, site: Site, size: str) -> None:
    sign_in_through_the_form(page, site.base, site.admin)
    open_page(page, f"{site.base}/documents")
    row = page.locator("#document-list tr[data-status]", has_text=DOCUMENT)
    expect(row).to_have_attribute("data-status", "ready", timeout=90_000)

    open_page(page, f"{site.base}/chat")
    box = page.get_by_role("textbox", name="Your question")
    box.fill(QUESTION)
    box.press("Enter")
    streaming = page.locator("article.message.assistant.streaming")
    expect(streaming).to_contain_text("naproxen")
    check(page, f"chat while the answer streams ({size})")

    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_contain_text("Step39.", timeout=30_000)
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{24}$"))
    check(page, f"chat with an answer ({size})")

    citation = answer.locator("a.cite").first
    expect(citation).to_have_text("[1]")
    citation.click()
    panel = page.get_by_role("dialog")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("naproxen")
    check(page, f"citation panel ({size})")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    if size == "phone":
        open_drawer(page)
        expect(page.get_by_role("navigation", name="Your conversations")).to_contain_text(TITLE)
        check(page, f"chat drawer with conversations ({size})")


def test_the_extracted_text_page(page: Page, site: Site, size: str) -> None:
    """The page the image-to-text form answers with where the composer's script does not take over."""
    sign_in_through_the_form(page, site.base, site.admin)
    open_page(page, f"{site.base}/chat")
    image = files.image_bytes(files.text_image(["Take two tablets daily"], size=(1400, 200)), "PNG")
    # Set the file without a change event (the script would read it in place) and post the plain form.
    page.evaluate(
        """(data) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], "label.png", {type: "image/png"}));
          document.getElementById("composer-image").files = transfer.files;
          document.getElementById("composer-media").submit();
        }""",
        base64.b64encode(image).decode(),
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Text from your image", timeout=60_000)
    expect(page.get_by_label("Your question")).to_have_value(re.compile("two tablets", re.I), timeout=60_000)
    check(page, f"extracted text ({size})")

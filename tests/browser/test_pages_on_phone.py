"""Every page fits a phone (390x844) without sideways scrolling and still lays out cleanly on a desktop
(1280x800); a word found only in an answer is a search hit in the sidebar; the styled file input uploads.

A real ``medchat serve`` (answers from the fake OpenAI-compatible server) and real Chromium. The data is made
to be hard to lay out: a long email, a long API-key name, a long file name, audit rows with long ids.
Screenshots of chat, knowledge base, admin users and audit at both sizes go to ``$MEDCHAT_SCREENSHOT_DIR``
when it is set.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import files
from tests.support.browser import (
    BROWSER_PASSWORD,
    Site,
    bearer_headers,
    create_admin,
    sign_in_through_the_form,
)
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess
from tests.support.site_pages import DESKTOP, PHONE

TITLE = "Gout flare care"
REPLY = (
    "For a gout flare, **naproxen** 500 mg twice a day with food is the usual first choice. "
    "Rest and raise the joint, and drink plenty of water."
)
LONG_FILE = "ward-round-notes-for-the-rheumatology-department-revised-edition-2026.txt"
LONG_KEY_NAME = "continuous-integration-runner-for-the-radiology-reporting-pipeline"
NOTES = b"Ward round notes. Gout: give naproxen with food; colchicine if naproxen is not tolerated.\n" * 20
PAGES = {
    "chat": "/chat/{conversation_id}",
    "knowledge-base": "/documents",
    "profile": "/profile",
    "admin-users": "/admin/users",
    "audit": "/admin/audit",
    "api-keys": "/admin/api-keys",
}
SCREENSHOTS = ("chat", "knowledge-base", "admin-users", "audit")
LAYOUT_PROBLEMS = """
(containers) => {
  const problems = [];
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden"
      && el.checkVisibility({ visibilityProperty: true })  // not in a closed <details>
      && !["absolute", "fixed"].includes(style.position);
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  for (const selector of containers) {
    for (const container of document.querySelectorAll(selector)) {
      const kids = [...container.children].filter(shown);
      for (let i = 0; i < kids.length; i++) {
        for (let j = i + 1; j < kids.length; j++) {
          const a = kids[i].getBoundingClientRect(), b = kids[j].getBoundingClientRect();
          const across = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const down = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (across > 1 && down > 1) problems.push(`${name(kids[i])} overlaps ${name(kids[j])} in ${selector}`);
        }
      }
    }
  }
  const hiddenAway = (el) => {  // inside something visually hidden (a table head kept for screen readers)
    for (let up = el; up && up !== document.body; up = up.parentElement) {
      const box = up.getBoundingClientRect();
      if (box.width <= 1 || box.height <= 1 || getComputedStyle(up).clip !== "auto") return true;
    }
    return false;
  };
  for (const el of document.querySelectorAll("main td, main th, main dd, main label, main button, main .button")) {
    const style = getComputedStyle(el);
    if (shown(el) && !hiddenAway(el) && style.overflowX === "visible" && el.scrollWidth > el.clientWidth + 1) {
      const text = el.textContent.trim().slice(0, 40);
      problems.push(`${name(el)} spills out (${el.scrollWidth} > ${el.clientWidth}): ${text}`);
    }
  }
  const main = document.querySelector("main");
  const clipped = (el) => {  // inside a box that clips or scrolls its own content (a code block, a drawer)
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  for (const el of document.querySelectorAll("main *")) {
    const box = el.getBoundingClientRect();
    if (shown(el) && box.right > document.documentElement.clientWidth + 1 && !clipped(el)) {
      const path = [];
      for (let up = el; up && up !== main; up = up.parentElement) path.unshift(name(up));
      problems.push(`${path.join(" > ")} reaches past the window (${Math.round(box.right)} px)`);
      break;
    }
  }
  return main ? problems : ["no <main>"];
}
"""
CONTAINERS = [
    ".topbar",
    ".topbar nav",
    ".admin-nav",
    ".audit-filters",
    "form.search",
    "main table tr",
    ".row-actions",
    ".dropzone-controls",
    ".file-pick-row",
    ".auth-sections",
    ".details",
    ".document-actions",
]
COLUMN_TRACKER = """
() => {
  const widths = () => [...document.querySelectorAll("#document-list table.documents tr:first-child > *")]
    .map((cell) => Math.round(cell.getBoundingClientRect().width));
  window.__columnLayouts = [];
  window.__columnStates = [];
  document.addEventListener("htmx:afterSettle", () => {
    if (!document.querySelector("#document-list table.documents")) return;
    window.__columnLayouts.push(widths().join(","));
    window.__columnStates.push([...document.querySelectorAll("#document-list tr[data-status]")]
      .map((row) => row.dataset.status).join(","));
  });
}
"""


def reply(body: dict[str, Any]) -> str:
    """The answer for streamed requests; a title for the short non-streamed one."""
    return REPLY if body.get("stream") else TITLE


@pytest.fixture(scope="module")
def pages_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply) as server:
        yield server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pages_llm: FakeLLMServer) -> Iterator[Site]:
    """The server, an admin made as an operator makes one, and data that is hard to lay out."""
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": pages_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/pages",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-pages") / "data", extra_env=env) as server:
        base = server.base_url
        admin = create_admin(
            server, email=f"administrator-{uuid.uuid4().hex[:10]}@clinical-governance.example-hospital.org"
        )
        headers = bearer_headers(base, admin)
        long_email = f"a.very.long.name.for.layout.checks.{uuid.uuid4().hex}@radiology.example-hospital.org"
        registered = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": long_email, "password": BROWSER_PASSWORD, "full_name": "Maximilian Longname-Example"},
        )
        assert registered.status_code == 201, registered.text
        key = httpx.post(
            f"{base}/api/v1/users/me/api-keys", json={"name": LONG_KEY_NAME, "expires_in_days": 30}, headers=headers
        )
        assert key.status_code == 201, key.text
        uploaded = httpx.post(
            f"{base}/api/v1/documents/",
            files={"file": (LONG_FILE, NOTES, "text/plain")},
            data={"scope": "private"},
            headers=headers,
        )
        assert uploaded.status_code == 202, uploaded.text
        asked = httpx.post(
            f"{base}/api/v1/chat/messages", json={"content": "What helps a gout flare?"}, headers=headers, timeout=60
        )
        assert asked.status_code == 201, asked.text
        yield Site(server, admin, asked.json()["conversation_id"])


@pytest.fixture
def admin_page(page: Page, site: Site) -> Page:
    """The admin signed in through the form (the suite's console check fails the test on any console error)."""
    return sign_in_through_the_form(page, site.base, site.admin)


@pytest.fixture
def no_js_page(browser: Browser, site: Site) -> Iterator[Page]:
    """A browser without JavaScript, signed in as the admin."""
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    page.goto(f"{site.base}/login")
    page.get_by_label("Email").fill(site.admin.email)
    page.get_by_label("Password").fill(site.admin.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    yield page
    context.close()


def scroll_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def layout_problems(page: Page, width: int, label: str) -> list[str]:
    """What makes ``page`` scroll sideways at ``width`` or overlap; empty when it fits."""
    wide = scroll_width(page)
    found = [f"{label}: {wide} px wide at {width} px"] if wide > width else []
    return found + [f"{label} at {width} px: {problem}" for problem in page.evaluate(LAYOUT_PROBLEMS, CONTAINERS)]


def assert_fits(page: Page, width: int, label: str) -> None:
    assert layout_problems(page, width, label) == []


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("MEDCHAT_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_fits_without_sideways_scrolling(admin_page: Page, site: Site, viewport: dict[str, int]) -> None:
    page = admin_page
    page.set_viewport_size(viewport)
    size = "phone" if viewport is PHONE else "desktop"
    problems: list[str] = []
    for name, path in PAGES.items():
        page.goto(site.base + path.format(conversation_id=site.conversation_id))
        expect(page.locator("main h1").first).to_be_visible()
        if name == "chat":
            expect(page.locator("article.message.assistant.complete")).to_contain_text("naproxen")
        if name == "knowledge-base":
            expect(page.locator("#document-list tr[data-status]", has_text=LONG_FILE[:20])).to_be_visible()
        problems += layout_problems(page, viewport["width"], name)
        if name in SCREENSHOTS:
            screenshot(page, f"{name}-{size}")
    assert problems == []


def test_admin_tables_become_labelled_cards_on_a_phone(admin_page: Page, site: Site) -> None:
    page = admin_page
    for path, row in [("/admin/users", "#user-rows tr[id^=user-]"), ("/admin/audit", "#audit-rows tr[id^=audit-]")]:
        page.set_viewport_size(DESKTOP)
        page.goto(site.base + path)
        cell = page.locator(f"{row} td").first
        expect(cell).to_be_visible()
        assert cell.evaluate("(el) => getComputedStyle(el).display") == "table-cell", "a table on a desktop"
        page.set_viewport_size(PHONE)
        head = page.locator("main thead").bounding_box()
        assert head is not None and head["width"] <= 1, "the column heads are kept for screen readers only"
        cells = page.locator(f"{row} td[data-label]")
        assert cells.count() >= 3
        label = cells.nth(1).evaluate("(el) => getComputedStyle(el, '::before').content")
        assert label.strip('"') == cells.nth(1).get_attribute("data-label"), "each value says what it is"
        assert cells.nth(1).evaluate("(el) => getComputedStyle(el).display") != "table-cell", "a card on a phone"
        assert_fits(page, PHONE["width"], path)
    long_email = page.goto(site.base + "/admin/users?q=a.very.long.name")
    assert long_email is not None and long_email.ok
    email_cell = page.locator("#user-rows td", has_text="a.very.long.name")
    expect(email_cell).to_be_visible()
    box = email_cell.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"], "the long email wraps inside the card"


def test_the_audit_filters_are_a_grid_that_stacks_on_a_phone(admin_page: Page, site: Site) -> None:
    page = admin_page
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site.base}/admin/audit")
    filters = page.locator("form.audit-filters")
    fields = filters.locator("label")
    expect(fields).to_have_count(4)
    boxes = [fields.nth(index).bounding_box() for index in range(4)]
    assert len({round(box["y"] + box["height"]) for box in boxes if box}) == 1, "one row of filters on a desktop"
    page.set_viewport_size(PHONE)
    boxes = [fields.nth(index).bounding_box() for index in range(4)]
    assert all(box is not None and box["width"] >= 150 for box in boxes), "no squeezed fields on a phone"
    assert len({round(box["y"]) for box in boxes if box}) >= 2, "the filters wrap onto rows on a phone"
    page.get_by_label("Action").select_option("login")
    expect(page).to_have_url(re.compile(r"action=login"))
    rows = page.locator("#audit-rows tr[data-action]")
    expect(rows.first).to_be_visible()
    assert set(rows.evaluate_all("(rows) => rows.map((row) => row.dataset.action)")) == {"login"}
    assert_fits(page, PHONE["width"], "filtered audit")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_word_only_in_an_answer_is_a_search_hit_that_opens_the_conversation(
    admin_page: Page, site: Site, viewport: dict[str, int]
) -> None:
    page = admin_page
    page.set_viewport_size(viewport)
    page.goto(f"{site.base}/chat")
    search = page.get_by_role("searchbox", name="Search conversations")
    if not search.is_visible():  # on a phone the conversation list may be a drawer behind a button
        page.get_by_role("button", name=re.compile("conversations", re.I)).first.click()
    expect(search).to_be_visible()
    search.fill("NAPROXEN")
    hit = page.locator("#conversation-list .search-hit", has_text=TITLE)
    expect(hit).to_be_visible()
    expect(hit.locator("mark").first).to_have_text("naproxen")
    expect(hit).to_contain_text("500 mg twice a day")
    assert "**" not in hit.inner_text(), "the snippet is text, not Markdown"
    assert_fits(page, viewport["width"], "search hits")
    screenshot(page, "search-hit-" + ("phone" if viewport is PHONE else "desktop"))
    hit.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/chat/{site.conversation_id}#msg-[0-9a-f]{{24}}$"))
    expect(page.locator("main h1").first).to_have_text(TITLE)
    expect(page.locator("article.message.assistant.complete strong")).to_have_text("naproxen")


def test_the_styled_file_input_uploads_and_the_columns_do_not_jump(
    admin_page: Page, site: Site, tmp_path: Path
) -> None:
    page = admin_page
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site.base}/documents")
    field = page.get_by_label("File", exact=True)
    button = page.locator(".file-pick-button")
    name = page.locator(".file-pick-name")
    expect(button).to_be_visible()
    expect(button).to_have_text("Choose a file")
    expect(name).to_have_text("No file chosen")
    assert field.evaluate("(el) => el.getBoundingClientRect().width") <= 1, "the browser's own control is hidden"

    page.locator("#upload-form select").focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "upload-file", "the file input is reached with the keyboard"
    outline = button.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline != "none", "and its button shows the focus"

    notes = tmp_path / "discharge-letter-template-for-the-acute-medical-unit-with-a-long-name.txt"
    notes.write_text("Discharge letter. Gout: continue naproxen for five days, then stop.\n" * 10)
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(str(notes))
    expect(name).to_have_text(notes.name)
    assert name.evaluate("(el) => el.scrollWidth > el.clientWidth || el.clientWidth < 700"), "a long name is cut"

    page.evaluate(COLUMN_TRACKER)
    before = page.locator("#document-list tr[data-status]").count()
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#document-list tr[data-status]", has_text=notes.name)
    expect(row).to_be_visible()
    expect(name).to_have_text("No file chosen")
    expect(row).to_have_attribute("data-status", "ready", timeout=60_000)
    assert page.locator("#document-list tr[data-status]").count() == before + 1
    layouts: list[str] = page.evaluate("window.__columnLayouts")
    states: list[str] = page.evaluate("window.__columnStates")
    assert layouts, "the list was swapped at least once"
    assert len(set(layouts)) == 1, f"columns moved between states {states}: {layouts}"

    page.set_viewport_size(PHONE)
    assert_fits(page, PHONE["width"], "knowledge base after an upload")


def test_without_javascript_the_file_input_uploads_and_the_extracted_text_page_fits(
    no_js_page: Page, site: Site, tmp_path: Path
) -> None:
    page = no_js_page
    page.goto(f"{site.base}/documents")
    field = page.get_by_label("File", exact=True)
    expect(field).to_be_visible()  # the browser's control, styled: it names the chosen file without a script
    notes = tmp_path / "no-script-upload.txt"
    notes.write_text("Uploaded without JavaScript. Gout: naproxen.\n" * 5)
    field.set_input_files(str(notes))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("The document was uploaded")).to_be_visible()
    expect(page.locator("#document-list tr[data-status]", has_text="no-script-upload.txt")).to_be_visible()
    assert_fits(page, PHONE["width"], "knowledge base without JavaScript")

    page.goto(f"{site.base}/chat")
    image = files.image_bytes(files.text_image(["Take two tablets daily"], size=(1400, 200)), "PNG")
    page.get_by_label("Image to text").set_input_files({"name": "label.png", "mimeType": "image/png", "buffer": image})
    page.get_by_role("button", name="Read the text").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Text from your image")
    expect(page.get_by_label("Your question")).to_have_value(re.compile("two tablets", re.I), timeout=60_000)
    assert_fits(page, PHONE["width"], "extracted text")
    page.set_viewport_size(DESKTOP)
    assert_fits(page, DESKTOP["width"], "extracted text")

"""The chat's layout and feel in a real browser (issue 12), on a desktop (1280x800) and a phone (390x844).

A full-height page (the thread scrolls, the composer stays in the window, no page scroll, no footer); the sidebar
collapses on a desktop (remembered) and is a drawer on a phone (Escape and the backdrop close it); conversations
grouped by date, renamed and deleted from the list with a confirmation; the composer autofocused, growing with its
text, with Stop while an answer streams; a scroll-to-bottom control; Copy says "Copied"; the tab title follows the
conversation's title; and no console error (a CSP violation included) in any of it.

The model is the fake OpenAI-compatible server; ``medchat serve`` is real.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect

from tests.support.browser import BROWSER_PASSWORD, Account, sign_in_through_the_form
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess

TITLE = "Blood pressure basics"
REPLY = "High blood pressure is **140/90 mmHg** or more [1].\n\n" + "\n\n".join(
    f"Paragraph {n}: " + " ".join(f"word{n}x{k}" for k in range(14)) + "." for n in range(12)
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def reply(body: dict[str, Any]) -> str:
    """The answer for streamed requests; a title for the short non-streamed one."""
    return REPLY if body.get("stream") else TITLE


@pytest.fixture(scope="module")
def layout_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply, token_delay=0.0) as server:
        yield server


@pytest.fixture(scope="module")
def layout_server(tmp_path_factory: pytest.TempPathFactory, layout_llm: FakeLLMServer) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": layout_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/chat",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-layout") / "data", extra_env=env) as server:
        yield server


@pytest.fixture
def llm(layout_llm: FakeLLMServer) -> Iterator[FakeLLMServer]:
    layout_llm.fail_with(None)
    layout_llm.token_delay = 0.0
    yield layout_llm
    layout_llm.token_delay = 0.0


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest, page: Page) -> str:
    page.set_viewport_size(VIEWPORTS[request.param])
    return str(request.param)


@pytest.fixture
def chat(page: Page, layout_server: ServeProcess) -> Iterator[Page]:
    """A newly registered user signed in on an empty chat page; fails the test on any console error or page error
    (a CSP ``style-src`` violation is a console error)."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    email = f"layout-{uuid.uuid4().hex[:10]}@example.org"
    response = httpx.post(
        f"{layout_server.base_url}/api/v1/auth/register",
        json={"email": email, "password": BROWSER_PASSWORD, "full_name": "Layout Tester"},
    )
    assert response.status_code == 201, response.text
    account = Account(response.json()["user"]["id"], email, BROWSER_PASSWORD, "Layout Tester")
    sign_in_through_the_form(page, layout_server.base_url, account)
    page.goto(f"{layout_server.base_url}/chat")
    expect(page.locator("main h1")).to_have_text("New conversation")
    yield page
    assert errors == [], f"console errors: {errors}"


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Your question")


def ask(page: Page, question: str) -> None:
    """Ask and wait for the finished answer."""
    answers = page.locator("article.message.assistant.complete")
    before = answers.count()
    composer(page).fill(question)
    composer(page).press("Enter")
    expect(answers).to_have_count(before + 1)


def new_chat(page: Page) -> Locator:
    """The "New chat" link in view: the sidebar's, or the header's when the sidebar is collapsed or a drawer."""
    return page.get_by_role("link", name="New chat").locator("visible=true").first


def open_sidebar_if_drawer(page: Page) -> None:
    """On a phone the conversations are behind the header's button."""
    if not page.locator("#chat-sidebar").is_visible():
        page.get_by_role("button", name="Conversations").click()
        expect(page.locator("#chat-sidebar")).to_be_visible()


WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`).slice(0, 8)"""


def fits_the_width(page: Page, width: int) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{wide} px wide at {width} px: {page.evaluate(WIDER_THAN_THE_WINDOW)}"


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def test_the_chat_fills_the_window_and_the_thread_scrolls(chat: Page, llm: FakeLLMServer, viewport: str) -> None:
    page = chat
    size = VIEWPORTS[viewport]
    for n in range(3):
        ask(page, f"What counts as high blood pressure, question {n}?")
    expect(page.locator("footer.footer")).to_have_count(0)
    geometry = page.evaluate(
        """() => ({
          pageHeight: document.documentElement.scrollHeight, windowHeight: window.innerHeight,
          pageWidth: document.documentElement.scrollWidth,
          threadScrolls: document.getElementById("thread-scroll").scrollHeight
                         > document.getElementById("thread-scroll").clientHeight,
        })"""
    )
    assert geometry["pageHeight"] <= geometry["windowHeight"], f"the page itself scrolls: {geometry}"
    fits_the_width(page, size["width"])
    assert geometry["threadScrolls"], "three long answers overflow the thread, which scrolls inside the page"
    send = box(page.locator("#composer"))
    assert send["y"] + send["height"] <= size["height"], "the composer stays within the window"
    bar = box(page.locator(".topbar"))
    brand = box(page.locator(".topbar .brand"))
    sign_out = box(page.get_by_role("button", name="Sign out"))
    assert abs(sign_out["y"] - brand["y"]) < brand["height"], "the top bar is one line"
    assert bar["height"] < 64, f"the top bar is one line, not {bar['height']} px"
    head = box(page.locator(".chat-head"))
    assert head["height"] < 64, f"the chat's header is one line, not {head['height']} px"


def test_the_sidebar_collapses_on_a_desktop_and_stays_collapsed(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    page.set_viewport_size(DESKTOP)
    ask(page, "What is asthma?")
    toggle = page.get_by_role("button", name="Conversations")
    sidebar = page.locator("#chat-sidebar")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(sidebar).to_be_visible()
    thread_width = box(page.locator("#thread-scroll"))["width"]

    toggle.click()
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert box(page.locator("#thread-scroll"))["width"] > thread_width, "the conversation takes the room"
    expect(page.get_by_role("link", name="New chat")).to_be_visible()  # still one click away

    page.reload()
    expect(page.locator("article.message.assistant.complete")).to_have_count(1)
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.reload()
    expect(sidebar).to_be_visible()


def test_on_a_phone_the_sidebar_is_a_drawer(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    page.set_viewport_size(PHONE)
    ask(page, "What is asthma?")
    sidebar = page.locator("#chat-sidebar")
    toggle = page.get_by_role("button", name="Conversations")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".drawer-backdrop")).to_be_visible()
    assert page.evaluate("document.getElementById('chat-sidebar').contains(document.activeElement)"), "focus moves in"
    assert page.evaluate("document.querySelector('.chat-main').inert"), "the page behind is inert"
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_visible()

    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_be_focused()
    assert not page.evaluate("document.querySelector('.chat-main').inert")

    toggle.click()
    expect(sidebar).to_be_visible()
    page.mouse.click(PHONE["width"] - 20, PHONE["height"] // 2)  # on the backdrop, beside the drawer
    expect(sidebar).to_be_hidden()
    expect(page.locator(".drawer-backdrop")).to_be_hidden()
    fits_the_width(page, PHONE["width"])

    toggle.click()  # following a conversation link closes the drawer and opens the conversation
    page.locator("#chat-sidebar").get_by_role("link", name="New chat").click()
    expect(page.locator("main h1")).to_have_text("New conversation")
    expect(sidebar).to_be_hidden()


def test_conversations_are_grouped_and_renamed_and_deleted_from_the_list(
    chat: Page, llm: FakeLLMServer, viewport: str
) -> None:
    page = chat
    ask(page, "What is asthma?")
    first_url = page.url
    new_chat(page).click()
    expect(page.locator("main h1")).to_have_text("New conversation")
    ask(page, "What is gout?")
    expect(page).not_to_have_url(first_url)
    second_id = page.url.rsplit("/", 1)[1]
    first_id = first_url.rsplit("/", 1)[1]

    open_sidebar_if_drawer(page)
    today = page.get_by_role("list", name="Today")
    expect(page.locator("#conversation-list h2.conv-group")).to_have_text(["Today"])
    expect(today.locator("li.conv-item")).to_have_count(2)
    first = page.locator(f"#conv-{first_id}")
    expect(first).to_be_visible()

    # Rename another conversation from its menu: the list changes, this page's title does not.
    first.locator("summary").click()
    field = first.get_by_role("textbox", name="Rename")
    expect(field).to_be_focused()
    field.fill("Asthma notes")
    field.press("Enter")
    expect(page.locator(f"#conv-{first_id} .conv-link")).to_have_text("Asthma notes")
    expect(page.locator(f"#conv-{first_id} details")).not_to_have_attribute("open", "")
    expect(page.locator(f"#conv-{second_id} .conv-link")).to_have_attribute("aria-current", "page")
    expect(page.locator("main h1")).to_have_text(TITLE)

    # Rename this conversation from the list: the heading and the tab follow.
    current = page.locator(f"#conv-{second_id}")
    current.locator("summary").click()
    current.get_by_role("textbox", name="Rename").fill("Gout notes")
    current.get_by_role("button", name="Save").click()
    expect(page.locator("main h1")).to_have_text("Gout notes")
    expect(page).to_have_title("Gout notes · medchat")

    # Delete another conversation from the list: asked first, then confirmed, and this page stays.
    page.once("dialog", lambda dialog: dialog.dismiss())
    first = page.locator(f"#conv-{first_id}")
    first.locator("summary").click()
    first.get_by_role("button", name="Delete conversation").click()
    expect(first).to_be_visible()  # dismissed: nothing deleted
    page.once("dialog", lambda dialog: dialog.accept())
    first.get_by_role("button", name="Delete conversation").click()
    expect(page.locator(f"#conv-{first_id}")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Conversation deleted")).to_be_visible()
    expect(page.locator("main h1")).to_have_text("Gout notes")
    assert httpx.get(f"{page.url.rsplit('/chat', 1)[0]}/chat/{first_id}").status_code in (303, 401, 404)

    # Delete this conversation from the list: a new chat, which says so.
    open_sidebar_if_drawer(page)
    current = page.locator(f"#conv-{second_id}")
    current.locator("summary").click()
    page.once("dialog", lambda dialog: dialog.accept())
    current.get_by_role("button", name="Delete conversation").click()
    expect(page.locator("main h1")).to_have_text("New conversation")
    expect(page.get_by_role("status").filter(has_text="Conversation deleted")).to_be_visible()
    expect(page.locator(f"#conv-{second_id}")).to_have_count(0)
    page.reload()
    expect(page.locator("main h1")).to_have_text("New conversation")
    expect(page.get_by_text("Conversation deleted")).to_have_count(0)  # said once


def test_the_header_rename_opens_without_moving_the_header_and_the_tab_follows(chat: Page, llm: FakeLLMServer) -> None:
    page = chat
    page.set_viewport_size(DESKTOP)
    expect(page).to_have_title("New conversation · medchat")
    ask(page, "What counts as high blood pressure today?")
    # The first title is the question's first words; the model's title arrives after the answer: the tab follows.
    expect(page.locator("main h1")).to_have_text(TITLE)
    expect(page).to_have_title(f"{TITLE} · medchat")

    header = page.locator(".chat-head")
    before = box(header)
    heading = box(page.locator("main h1"))
    page.locator("#chat-header").get_by_text("Rename", exact=True).click()
    field = page.get_by_role("textbox", name="New title")
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    assert box(header) == before, "opening Rename does not reflow the header"
    assert box(page.locator("main h1")) == heading
    field.fill("My blood pressure")
    field.press("Enter")
    expect(page.locator("main h1")).to_have_text("My blood pressure")
    expect(page).to_have_title("My blood pressure · medchat")
    open_sidebar_if_drawer(page)
    expect(page.locator("#conversation-list [aria-current='page']")).to_have_text("My blood pressure")


def test_the_composer_grows_and_offers_stop_while_an_answer_streams(
    chat: Page, llm: FakeLLMServer, viewport: str
) -> None:
    page = chat
    box_ = composer(page)
    if viewport == "desktop":
        expect(box_).to_be_focused()
    else:
        box_.click()
    one_line = box(box_)["height"]
    box_.fill("A question")
    for n in range(5):
        box_.press("Shift+Enter")
        box_.press_sequentially(f"line {n}")
    expect(box_).to_have_value(re.compile(r"line 4$"))
    grown = box(box_)["height"]
    assert grown > one_line + 40, f"the composer grows with its text ({one_line} -> {grown})"
    for n in range(40):
        box_.press("Shift+Enter")
        box_.press_sequentially(f"more {n}")
    capped = box(box_)["height"]
    assert capped <= VIEWPORTS[viewport]["height"] * 0.4 + 2, f"up to a limit ({capped})"
    assert page.evaluate("document.documentElement.scrollHeight") <= VIEWPORTS[viewport]["height"]

    llm.token_delay = 0.08
    box_.press("Enter")
    expect(box_).to_have_value("")
    streaming = page.locator("article.message.assistant.streaming")
    expect(streaming).to_be_visible()
    stop = page.locator("#composer").get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(page.locator("#composer").get_by_role("button", name="Send")).to_be_hidden()
    assert box(box_)["height"] < grown, "the emptied composer shrinks back"
    stop.click()
    stopped = page.locator("article.message.assistant.failed")
    expect(stopped).to_contain_text("You stopped this answer.")
    expect(stop).to_be_hidden()
    expect(page.locator("#composer").get_by_role("button", name="Send")).to_be_enabled()


def test_scroll_to_bottom_appears_when_scrolled_up_and_copy_confirms(
    chat: Page, llm: FakeLLMServer, viewport: str
) -> None:
    page = chat
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ask(page, "What counts as high blood pressure?")
    ask(page, "And what is low blood pressure?")
    to_bottom = page.get_by_role("button", name="Scroll to the newest message")
    expect(to_bottom).to_be_hidden()  # at the end already
    page.locator("#thread-scroll").evaluate("(area) => { area.scrollTop = 0; }")
    expect(to_bottom).to_be_visible()
    to_bottom.click()
    expect(to_bottom).to_be_hidden()
    at_end = page.locator("#thread-scroll").evaluate("(a) => a.scrollHeight - a.scrollTop - a.clientHeight")
    assert at_end < 160

    copy = page.locator("article.message.assistant.complete").last.locator("button[data-copy-text]")
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert "140/90 mmHg" in page.evaluate("navigator.clipboard.readText()")
    expect(copy).to_have_text("Copy")


def test_creating_conversations_again_and_again_logs_no_error(chat: Page, llm: FakeLLMServer, viewport: str) -> None:
    """Each new conversation swaps the header, the list and the thread: no CSP violation, no error (``chat``)."""
    page = chat
    for n in range(4):
        ask(page, f"Question number {n} about blood pressure?")
        expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{24}$"))
        expect(page).to_have_title(f"{TITLE} · medchat")
        new_chat(page).click()
        expect(page.locator("main h1")).to_have_text("New conversation")
        expect(page).to_have_title("New conversation · medchat")
    open_sidebar_if_drawer(page)
    expect(page.locator("#conversation-list li.conv-item")).to_have_count(4)


def test_without_javascript_the_list_still_renames_and_deletes(
    browser: Browser, layout_server: ServeProcess, llm: FakeLLMServer
) -> None:
    """No drawer and no menus' scripts: the list sits above the chat on a phone, its forms post and come back."""
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        email = f"nojs-{uuid.uuid4().hex[:10]}@example.org"
        base = layout_server.base_url
        response = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": email, "password": BROWSER_PASSWORD, "full_name": "No Script"},
        )
        assert response.status_code == 201, response.text
        sign_in_through_the_form(
            page, base, Account(response.json()["user"]["id"], email, BROWSER_PASSWORD, "No Script")
        )
        page.goto(f"{base}/chat")
        composer(page).fill("What is asthma?")
        page.get_by_role("button", name="Send").click()
        expect(page).to_have_url(re.compile(r"/chat/[0-9a-f]{24}$"))
        conversation_id = page.url.rsplit("/", 1)[1]
        expect(page.locator("article.message.assistant.complete")).to_have_count(1)
        item = page.locator(f"#conv-{conversation_id}")
        expect(item).to_be_visible()  # no drawer without JavaScript: the list is on the page
        fits_the_width(page, PHONE["width"])

        item.locator("summary").click()
        item.get_by_role("textbox", name="Rename").fill("Renamed without scripts")
        item.get_by_role("button", name="Save").click()
        expect(page.locator("main h1")).to_have_text("Renamed without scripts")
        expect(page).to_have_title("Renamed without scripts · medchat")

        item.locator("summary").click()
        item.get_by_role("button", name="Delete conversation").click()
        expect(page).to_have_url(re.compile(r"/chat/?$"))
        expect(page.get_by_text("Conversation deleted")).to_be_visible()
        expect(page.locator(f"#conv-{conversation_id}")).to_have_count(0)
    finally:
        context.close()

"""The knowledge base in a real browser, against a real ``medchat serve`` answering in sources-only mode.

Must-show 1: upload a three-page PDF, watch it become ready (live polling), ask a question only page 3
answers, open citation [1] in the side panel (title, page 3, the passage highlighted, a link to the original
at its page), then delete the document and find its passage gone from search. Also: drag and drop onto the
upload form, image to text and dictation into the composer (Chromium's fake microphone plays a WAV).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF
from playwright.sync_api import Browser, BrowserType, ConsoleMessage, Page, expect

from tests.support import files
from tests.support.browser import BROWSER_PASSWORD, Account, sign_in_through_the_form
from tests.support.leaflets import GOUT_LEAFLET, GOUT_LEAFLET_NAME
from tests.support.serve import ServeProcess

TITLE = "Anticoagulation clinic handbook"
PAGE_TEXTS = [
    "Hand hygiene. Clean hands with alcohol rub before and after every patient contact. "
    "Gloves do not replace hand hygiene.",
    "Sharps disposal. Place used needles in the yellow sharps bin immediately after use. Never recap a needle.",
    "Warfarin and cranberry juice. Patients taking warfarin should avoid large amounts of cranberry juice because "
    "it can raise the INR and increase the risk of bleeding. Check the INR within a week if a patient has been "
    "drinking cranberry juice regularly.",
]
QUESTION = "Can patients on warfarin drink cranberry juice?"
SPOKEN = "take two tablets daily"
EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 415 ")
"""Chromium logs every 4xx response; the wrong file the OCR test sends on purpose is not a fault."""


def handbook_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_title(TITLE)
    pdf.set_font("Helvetica", size=12)
    for text in PAGE_TEXTS:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def kb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """Sources-only answers: quoted from the passages, so what page 3 says is what the answer says.

    (Without a key the server would otherwise prefer the local model where it is installed.)
    """
    env = {"MEDCHAT_LLM_PROVIDER": "sources-only"}
    with ServeProcess(tmp_path_factory.mktemp("browser-kb") / "data", extra_env=env) as server:
        yield server


@pytest.fixture
def kb_account(kb_server: ServeProcess) -> tuple[Account, str]:
    """A new account on the knowledge-base server, and its bearer token (for the search API)."""
    email = f"kb-{uuid.uuid4().hex[:10]}@example.org"
    response = httpx.post(
        f"{kb_server.base_url}/api/v1/auth/register",
        json={"email": email, "password": BROWSER_PASSWORD, "full_name": "Kim Base"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["user"]["id"], email, BROWSER_PASSWORD, "Kim Base"), body["access_token"]


def watch_console(page: Page) -> list[str]:
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error" and not EXPECTED_REFUSAL.match(message.text):
            errors.append(message.text)

    page.on("console", keep)
    return errors


@pytest.fixture
def kb_page(page: Page, kb_server: ServeProcess, kb_account: tuple[Account, str]) -> Iterator[Page]:
    """Signed in through the form; fails the test on any console error (CSP violations included)."""
    errors = watch_console(page)
    sign_in_through_the_form(page, kb_server.base_url, kb_account[0])
    yield page
    assert errors == [], f"console errors: {errors}"


def search(page: Page, base_url: str, token: str, query: str) -> list[dict[str, Any]]:
    response = page.request.post(
        f"{base_url}/api/v1/search", data={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.ok, response.text()
    return response.json()["results"]


def ask(page: Page, question: str) -> None:
    box = page.get_by_role("textbox", name="Your question")
    box.fill(question)
    box.press("Enter")


def test_upload_watch_ready_ask_open_the_citation_then_delete(
    kb_page: Page, kb_server: ServeProcess, kb_account: tuple[Account, str], tmp_path: Path
) -> None:
    page, base, token = kb_page, kb_server.base_url, kb_account[1]
    pdf = tmp_path / "anticoagulation-handbook.pdf"
    pdf.write_bytes(handbook_pdf())

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge base").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Knowledge base")
    page.evaluate("window.sameDocument = true")  # gone if anything below reloads the page
    page.get_by_label("File", exact=True).set_input_files(pdf)
    page.get_by_role("button", name="Upload").click()

    row = page.locator("#document-list tbody tr", has_text="anticoagulation-handbook.pdf")
    expect(row).to_have_attribute("data-status", re.compile("queued|processing|ready"))
    expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
    expect(row.locator(".badge")).to_have_text("ready")
    expect(row.get_by_role("link", name=re.compile(TITLE))).to_have_attribute("target", "_blank")
    expect(row.locator("td").nth(2)).to_have_text("3")
    assert page.evaluate("window.sameDocument === true"), "the status changed by polling, without a reload"
    expect(page.locator("#document-list")).not_to_have_attribute("hx-trigger", re.compile("every"))
    document_id = row.get_attribute("id").removeprefix("document-")  # type: ignore[union-attr]
    assert {(r["document_id"], r["page"]) for r in search(page, base, token, QUESTION)} >= {(document_id, 3)}

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    ask(page, QUESTION)
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_be_visible(timeout=30_000)
    expect(answer.locator(".model-label")).to_have_text(re.compile("Sources only"))
    expect(answer.locator(".sources li").first).to_contain_text(f"{TITLE}")
    expect(answer.locator(".sources li").first).to_contain_text("page 3")

    citation = answer.locator("a.cite").first
    expect(citation).to_have_text("[1]")
    expect(citation).to_have_accessible_name(f"Source 1: {TITLE}, page 3")
    citation.click()
    panel = page.get_by_role("dialog", name=TITLE)
    expect(panel).to_be_visible()
    expect(panel).to_be_focused()
    expect(panel).to_have_attribute("aria-modal", "false")
    expect(citation).to_have_attribute("aria-expanded", "true")
    expect(panel).to_contain_text("Source [1]")
    expect(panel).to_contain_text("Page 3")
    expect(panel.locator("mark").first).to_contain_text("cranberry juice")
    expect(panel).not_to_contain_text("Sharps disposal")
    original = panel.get_by_role("link", name=re.compile("Open the original at page 3"))
    expect(original).to_have_attribute("href", f"/documents/{document_id}/file#page=3")
    expect(original).to_have_attribute("target", "_blank")

    # Kept in the test's tmp_path for a look (pytest-playwright empties test-results/ at each run).
    page.screenshot(path=str(tmp_path / "citation-panel-desktop.png"), animations="disabled")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(panel).to_be_in_viewport()
    page.screenshot(path=str(tmp_path / "citation-panel-phone.png"), animations="disabled")
    page.set_viewport_size({"width": 1280, "height": 720})

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(citation).to_be_focused()
    expect(citation).to_have_attribute("aria-expanded", "false")
    citation.press("Enter")  # the keyboard opens it too; the close button shuts it
    expect(panel).to_be_visible()
    panel.get_by_role("button", name="Close the source").click()
    expect(panel).to_be_hidden()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge base").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {TITLE}").click()
    expect(page.locator(f"#document-{document_id}")).to_have_count(0)
    expect(page.locator("#document-announcer")).to_have_text(f"{TITLE} deleted.")
    found = search(page, base, token, QUESTION)
    assert document_id not in {result["document_id"] for result in found}
    assert original_gone(page, base, document_id)


def original_gone(page: Page, base: str, document_id: str) -> bool:
    return page.request.get(f"{base}/documents/{document_id}/file").status == 404


def test_upload_and_delete_without_javascript(
    browser: Browser, kb_server: ServeProcess, kb_account: tuple[Account, str], tmp_path: Path
) -> None:
    """Plain form posts: each lands on the whole page (Post/Redirect/Get), which says what was done."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in_through_the_form(page, kb_server.base_url, kb_account[0], next_path="/documents")
        note = tmp_path / "ward-rota.txt"
        note.write_text("Ward rota. The night nurse checks the drug fridge at midnight.")
        page.get_by_label("File", exact=True).set_input_files(note)
        page.get_by_role("button", name="Upload").click()
        expect(page).to_have_url(f"{kb_server.base_url}/documents?done=uploaded")
        expect(page.get_by_role("heading", level=1)).to_have_text("Knowledge base")
        expect(page.locator("#flash")).to_contain_text("was uploaded")
        row = page.locator("#document-list tbody tr", has_text="ward-rota.txt")
        expect(row).to_have_count(1)

        page.get_by_role("button", name="Delete ward rota").click()
        expect(page).to_have_url(f"{kb_server.base_url}/documents?done=deleted")
        expect(page.locator("#flash")).to_contain_text("was deleted")
        expect(row).to_have_count(0)
    finally:
        context.close()


def test_drop_a_file_on_the_upload_form(kb_page: Page, kb_server: ServeProcess) -> None:
    page = kb_page
    page.goto(f"{kb_server.base_url}/documents")
    note = b"Ward notes. The zebra protocol applies to all night shifts on ward seven."
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "text/plain" }));
            return transfer;
        }""",
        ["ward-notes.txt", base64.b64encode(note).decode()],
    )
    zone = page.locator("#upload-form")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bdragging\b"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bdragging\b"))
    row = page.locator("#document-list tbody tr", has_text="ward-notes.txt")
    expect(row).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(page.locator("#document-announcer")).to_contain_text("is ready")


@pytest.mark.expected_console_errors(r"status of 415 \(Unsupported Media Type\) \(\S*/documents/ocr:")  # not an image
def test_an_image_fills_the_composer_with_its_text(kb_page: Page, kb_server: ServeProcess) -> None:
    page = kb_page
    page.goto(f"{kb_server.base_url}/chat")
    box = page.get_by_role("textbox", name="Your question")
    box.fill("What does this mean:")
    image = files.image_bytes(files.text_image(["Take two tablets daily"], size=(1400, 200)), "PNG")
    page.get_by_label("Image to text").set_input_files({"name": "label.png", "mimeType": "image/png", "buffer": image})
    expect(box).to_have_value(re.compile(r"^What does this mean: Take two tablets daily", re.I), timeout=60_000)
    expect(page.locator("#composer-media-status")).to_contain_text("added to your question")
    expect(page.locator(".composer-media")).to_have_attribute("aria-busy", "false")

    page.get_by_label("Image to text").set_input_files(
        {"name": "fake.png", "mimeType": "image/png", "buffer": b"just some words, not an image"}
    )
    expect(page.locator("#composer-media-error")).to_contain_text("PNG, JPEG or TIFF")
    expect(box).to_have_value(re.compile(r"^What does this mean: Take two tablets daily", re.I))
    box.press("Enter")  # the composer still sends with Enter
    expect(page.locator("article.message.user")).to_contain_text("What does this mean")


def test_a_refused_microphone_says_so(kb_page: Page, kb_server: ServeProcess) -> None:
    page = kb_page
    page.context.clear_permissions()
    page.goto(f"{kb_server.base_url}/chat")
    mic = page.get_by_role("button", name="Dictate")
    expect(mic).to_have_attribute("aria-pressed", "false")
    mic.click()
    expect(page.locator("#composer-media-error")).to_contain_text(re.compile("microphone", re.I))
    expect(mic).to_have_attribute("aria-pressed", "false")


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "dictation.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(path), SPOKEN], check=True)
    return path


@pytest.fixture(scope="module")
def microphone_browser(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], spoken_wav: Path
) -> Iterator[Browser]:
    """A Chromium of its own whose microphone plays ``spoken_wav`` (the session's browser has no microphone)."""
    args = [
        *browser_type_launch_args.get("args", []),
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={spoken_wav}",
    ]
    browser = browser_type.launch(**{**browser_type_launch_args, "args": args})
    yield browser
    browser.close()


def test_dictation_fills_the_composer(
    microphone_browser: Browser, kb_server: ServeProcess, kb_account: tuple[Account, str]
) -> None:
    context = microphone_browser.new_context(permissions=["microphone"])
    page = context.new_page()
    errors = watch_console(page)
    try:
        sign_in_through_the_form(page, kb_server.base_url, kb_account[0])
        page.goto(f"{kb_server.base_url}/chat")
        mic = page.get_by_role("button", name="Dictate")
        mic.click()
        expect(mic).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#composer-mic-timer")).to_be_visible()
        expect(page.locator("#composer-media-status")).to_contain_text("Recording")
        expect(page.locator("#composer-mic-timer")).to_have_text("0:03", timeout=10_000)  # the phrase plays twice
        mic.click()
        expect(mic).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#composer-mic-timer")).to_be_hidden()
        box = page.get_by_role("textbox", name="Your question")
        expect(box).to_have_value(re.compile(r"two tablets daily", re.I), timeout=60_000)
        expect(page.locator("#composer-media-status")).to_contain_text("added to your question")
        assert errors == [], f"console errors: {errors}"
    finally:
        context.close()


def test_a_term_the_embedding_model_does_not_know_is_answered_from_the_leaflet_defining_it(
    kb_page: Page, kb_server: ServeProcess, tmp_path: Path
) -> None:
    """Dense similarity alone found nothing for "What are tophi?"; the exact match on the term finds the leaflet."""
    page = kb_page
    leaflet = tmp_path / GOUT_LEAFLET_NAME
    leaflet.write_text(GOUT_LEAFLET, encoding="utf-8")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Knowledge base").click()
    page.get_by_label("File", exact=True).set_input_files(leaflet)
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#document-list tbody tr", has_text=GOUT_LEAFLET_NAME)
    expect(row).to_have_attribute("data-status", "ready", timeout=90_000)
    title = row.get_by_role("link").first.inner_text().splitlines()[0].strip()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    ask(page, "What are tophi?")
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_be_visible(timeout=30_000)
    expect(answer).not_to_contain_text("Not covered")
    expect(answer.locator(".sources li").first).to_contain_text(title)
    expect(answer.locator(".answer-body")).to_contain_text(re.compile("tophi", re.IGNORECASE))
    expect(answer.locator(".ungrounded")).to_have_count(0)
    citation = answer.locator("a.cite").first
    expect(citation).to_have_text("[1]")
    citation.click()
    panel = page.get_by_role("dialog", name=title)
    expect(panel).to_contain_text("tophi")

"""The knowledge base's pages, signed in with the session cookie like a browser: the documents page and its
live-status fragment, upload and delete through the page, and the composer's image and speech helpers
(``/documents/ocr``, ``/documents/voice``): full page without HTMX, fragment with it, CSRF, media types.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.llm import factory as llm_factory
from tests.support import files
from tests.support.accounts import RegisteredUser, RegisterUser
from tests.support.files import PAGE_TEXTS, three_page_pdf

HTMX = {"HX-Request": "true"}
CSRF_COOKIE = "medchat_csrf"


@pytest.fixture(autouse=True)
def sources_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers come from the passages, even where the local model is installed (no key is set in tests)."""
    monkeypatch.setattr(llm_factory, "find_local_model", lambda: None)


async def sign_in(client: AsyncTestClient[Litestar], user: RegisteredUser) -> dict[str, str]:
    """Sign ``client`` in through the login form (a session cookie); returns the CSRF header for posts."""
    await client.get("/login")
    csrf = client.cookies.get(CSRF_COOKIE, "")
    response = await client.post(
        "/login", data={"email": user.email, "password": user.password, "_csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code in (302, 303), response.text
    return {"X-CSRFToken": client.cookies.get(CSRF_COOKIE, csrf)}


@pytest.fixture
async def user(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> RegisteredUser:
    return await register_user(client)


@pytest.fixture
async def csrf(client: AsyncTestClient[Litestar], user: RegisteredUser) -> dict[str, str]:
    return await sign_in(client, user)


def png(text: str) -> bytes:
    return files.image_bytes(files.text_image([text], size=(1400, 200)), "PNG")


async def wait_for_status(client: AsyncTestClient[Litestar], document_id: str, status: str) -> str:
    """The list fragment once the document shows ``status`` (polled as the page's live status does).

    A bounded poll: the ingestion is an arq job in the app's in-process worker, and nothing waits for one job.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fragment = (await client.get("/documents", headers=HTMX)).text
        if re.search(rf'id="document-{document_id}" data-status="{status}"', fragment):
            return fragment
        await asyncio.sleep(0.05)
    raise AssertionError(f"document {document_id} never became {status}")


# --- the documents page ----------------------------------------------------------------------------
async def test_the_documents_page_needs_a_signed_in_user(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/documents", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/login?next=/documents")


async def test_the_page_and_its_live_fragment(client: AsyncTestClient[Litestar], csrf: dict[str, str]) -> None:
    page = await client.get("/documents")
    assert page.status_code == 200
    html = page.text
    assert "<title>Knowledge base · medchat</title>" in html
    assert 'id="upload-form"' in html and 'enctype="multipart/form-data"' in html
    assert 'id="document-announcer"' in html and 'role="status"' in html
    assert "No documents yet." in html
    assert "<script>" not in html and " style=" not in html, "the CSP forbids inline scripts and styles"
    assert page.headers["vary"] == "HX-Request"

    fragment = await client.get("/documents", headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="document-list"')
    assert "<html" not in fragment.text
    assert "hx-trigger" not in fragment.text, "nothing in progress: no polling"
    assert fragment.headers["vary"] == "HX-Request"

    boosted = await client.get("/documents", headers={**HTMX, "HX-Boosted": "true"})
    assert "<title>Knowledge base · medchat</title>" in boosted.text, "a boosted nav link gets the whole page"


async def test_upload_shows_live_progress_then_ready_and_delete_removes_it(
    client: AsyncTestClient[Litestar], user: RegisteredUser, csrf: dict[str, str]
) -> None:
    refused = await client.post(
        "/documents", files={"file": ("guide.pdf", three_page_pdf(), "application/pdf")}, headers=HTMX
    )
    assert refused.status_code == 403, "no CSRF token, no upload"

    uploaded = await client.post(
        "/documents",
        files={"file": ("guide.pdf", three_page_pdf(), "application/pdf")},
        data={"scope": "private"},
        headers={**HTMX, **csrf},
    )
    assert uploaded.status_code == 200, uploaded.text
    found = re.search(r'id="document-([0-9a-f]{24})" data-status="(queued|processing|ready)"', uploaded.text)
    assert found, uploaded.text
    document_id = found.group(1)
    if found.group(2) != "ready":
        assert 'hx-trigger="every 1.5s"' in uploaded.text, "the list polls while a document is in progress"
        assert "<progress" in uploaded.text

    ready = await wait_for_status(client, document_id, "ready")
    assert "hx-trigger" not in ready, "polling stops once every document is final"
    assert f'id="document-delete-{document_id}"' in ready, "controls keep their ids across polls (focus)"
    assert f'href="/documents/{document_id}/file"' in ready

    results = (
        await client.post("/api/v1/search", json={"query": "warfarin and cranberry juice"}, headers=user.headers)
    ).json()["results"]
    assert [(r["document_id"], r["page"]) for r in results][:1] == [(document_id, 3)]

    deleted = await client.post(f"/documents/{document_id}/delete", headers={**HTMX, **csrf})
    assert deleted.status_code == 200
    assert f'id="document-{document_id}"' not in deleted.text
    results = (
        await client.post("/api/v1/search", json={"query": "warfarin and cranberry juice"}, headers=user.headers)
    ).json()["results"]
    assert document_id not in {r["document_id"] for r in results}


async def test_an_answer_keeps_the_cited_passage_for_the_citation_panel(
    client: AsyncTestClient[Litestar], user: RegisteredUser, csrf: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/documents", files={"file": ("guide.pdf", three_page_pdf(), "application/pdf")}, headers={**HTMX, **csrf}
    )
    document_id = re.search(r'id="document-([0-9a-f]{24})"', uploaded.text).group(1)  # type: ignore[union-attr]
    await wait_for_status(client, document_id, "ready")

    # Without JavaScript: the question is answered before the redirect to the conversation.
    asked = await client.post(
        "/chat/messages",
        data={"content": "Can patients on warfarin drink cranberry juice?", "_csrf_token": csrf["X-CSRFToken"]},
        follow_redirects=False,
    )
    assert asked.status_code == 303, asked.text
    conversation = await client.get(asked.headers["location"])
    html = conversation.text
    answer_id = re.findall(r'id="msg-([0-9a-f]{24})" class="message assistant complete"', html)[-1]
    assert f'<a href="#src-{answer_id}-1" class="cite"' in html, "[1] links to the source entry without JavaScript"
    item = re.search(rf'<li id="src-{answer_id}-1"[^>]*>', html)
    assert item, html
    assert 'data-page="3"' in item.group(0)
    assert f'data-href="/documents/{document_id}/file#page=3"' in item.group(0)
    assert 'data-snippet="' in item.group(0)
    passage = re.search(r'<p class="source-text">(.*?)</p>', html, re.S)
    assert passage and "cranberry juice" in passage.group(1)

    api = await client.get(
        f"/api/v1/chat/conversations/{conversation.url.path.rsplit('/', 1)[1]}", headers=user.headers
    )
    source = api.json()["messages"][-1]["sources"][0]
    assert (source["document_id"], source["page"]) == (document_id, 3)
    assert source["text"].startswith(PAGE_TEXTS[2][:40]), "the whole passage is stored with the answer"


# --- the composer's helpers ------------------------------------------------------------------------
@pytest.mark.slow
async def test_ocr_answers_a_fragment_with_htmx_and_a_page_without(
    client: AsyncTestClient[Litestar], csrf: dict[str, str]
) -> None:
    image = png("Take two tablets daily")
    fragment = await client.post(
        "/documents/ocr", files={"file": ("scan.png", image, "image/png")}, headers={**HTMX, **csrf}
    )
    assert fragment.status_code == 200, fragment.text
    assert fragment.headers["vary"] == "HX-Request"
    text = re.fullmatch(r'\s*(?:\{#.*?#\}\s*)?<output class="extracted-text" data-kind="image">(.*?)</output>\s*',
                        fragment.text, re.S)  # fmt: skip
    assert text, fragment.text
    assert "two tablets daily" in text.group(1).lower()

    page = await client.post(
        "/documents/ocr",
        files={"file": ("scan.png", image, "image/png")},
        data={"conversation_id": "0123456789abcdef01234567", "_csrf_token": csrf["X-CSRFToken"]},
    )
    assert page.status_code == 200
    html = page.text
    assert "<title>Text from your image · medchat</title>" in html
    assert 'action="/chat/messages"' in html and 'hx-boost="false"' in html
    question = re.search(r'<textarea id="extracted-question" name="content"[^>]*>(.*?)</textarea>', html, re.S)
    assert question and "two tablets daily" in question.group(1).lower()
    assert 'name="conversation_id" value="0123456789abcdef01234567"' in html


async def test_ocr_and_voice_refuse_without_a_csrf_token_or_a_session(
    client: AsyncTestClient[Litestar], user: RegisteredUser
) -> None:
    anonymous = await client.post("/documents/ocr", files={"file": ("scan.png", png("x"), "image/png")}, headers=HTMX)
    assert anonymous.status_code in (204, 401, 403)
    await sign_in(client, user)
    for path in ("/documents/ocr", "/documents/voice"):
        refused = await client.post(path, files={"file": ("scan.png", png("x"), "image/png")}, headers=HTMX)
        assert refused.status_code == 403, f"{path}: {refused.status_code}"
    bearer = await client.post(
        "/documents/ocr", files={"file": ("scan.png", png("x"), "image/png")}, headers={**HTMX, **user.headers}
    )
    assert bearer.status_code == 403, "a page route still wants the CSRF token, whatever the credential"


async def test_the_wrong_kind_of_file_is_415_with_a_clear_message(
    client: AsyncTestClient[Litestar], csrf: dict[str, str]
) -> None:
    text_file = await client.post(
        "/documents/ocr", files={"file": ("notes.txt", b"plain words", "text/plain")}, headers={**HTMX, **csrf}
    )
    assert text_file.status_code == 415
    assert 'data-code="unsupported_media_type"' in text_file.text
    assert "PNG, JPEG or TIFF" in text_file.text
    assert text_file.headers["hx-retarget"] == "#flash"

    junk = await client.post(
        "/documents/ocr", files={"file": ("x.bin", b"\x00\x01\x02binary", "x/y")}, headers={**HTMX, **csrf}
    )
    assert junk.status_code == 415 and "PNG, JPEG or TIFF" in junk.text

    image_as_voice = await client.post(
        "/documents/voice", files={"file": ("scan.png", png("x"), "image/png")}, headers={**HTMX, **csrf}
    )
    assert image_as_voice.status_code == 415
    assert "WAV, MP3, OGG, WebM or M4A" in image_as_voice.text

    full_page = await client.post(
        "/documents/ocr",
        files={"file": ("notes.txt", b"plain words", "text/plain")},
        data={"_csrf_token": csrf["X-CSRFToken"]},
        headers={"Accept": "text/html"},
    )
    assert full_page.status_code == 415
    assert "<html" in full_page.text and "PNG, JPEG or TIFF" in full_page.text


@pytest.mark.slow
async def test_voice_transcribes_a_browser_recording(client: AsyncTestClient[Litestar], csrf: dict[str, str]) -> None:
    recording = files.transcode(files.spoken_wav(), "webm", "libopus")  # what MediaRecorder sends
    fragment = await client.post(
        "/documents/voice", files={"file": ("recording.webm", recording, "audio/webm")}, headers={**HTMX, **csrf}
    )
    assert fragment.status_code == 200, fragment.text
    assert 'data-kind="recording"' in fragment.text
    assert "tablets" in fragment.text.lower()


# --- the forms without JavaScript ------------------------------------------------------------------
BROKEN_PDF = b"%PDF-1.7\n this is not really a pdf at all"


def form_token(csrf: dict[str, str]) -> dict[str, str]:
    """The hidden ``_csrf_token`` field a plain form posts (no JavaScript, so no ``X-CSRFToken`` header)."""
    return {"_csrf_token": csrf["X-CSRFToken"]}


def assert_full_page(html: str) -> None:
    assert "<html" in html and '<nav aria-label="Main">' in html, html[:300]
    assert "<title>Knowledge base · medchat</title>" in html


async def follow(client: AsyncTestClient[Litestar], response: object) -> str:
    """The page a Post/Redirect/Get lands on: a 303 to the documents page, fetched as a browser does."""
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith("/documents"), location
    landed = await client.get(location)
    assert landed.status_code == 200
    assert_full_page(landed.text)
    return landed.text


async def test_upload_retry_and_delete_without_javascript_land_on_the_full_page(
    client: AsyncTestClient[Litestar], csrf: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/documents",
        files={"file": ("broken.pdf", BROKEN_PDF, "application/pdf")},
        data={"scope": "private", **form_token(csrf)},
        follow_redirects=False,
    )
    page = await follow(client, uploaded)
    assert "was uploaded" in page
    found = re.search(r'id="document-([0-9a-f]{24})"', page)
    assert found, page
    document_id = found.group(1)
    await wait_for_status(client, document_id, "failed")

    retried = await client.post(f"/documents/{document_id}/retry", data=form_token(csrf), follow_redirects=False)
    page = await follow(client, retried)
    assert "queued again" in page
    assert f'id="document-{document_id}"' in page
    await wait_for_status(client, document_id, "failed")

    deleted = await client.post(f"/documents/{document_id}/delete", data=form_token(csrf), follow_redirects=False)
    page = await follow(client, deleted)
    assert "was deleted" in page
    assert f'id="document-{document_id}"' not in page


async def test_a_refused_upload_without_javascript_shows_the_page_with_the_reason(
    client: AsyncTestClient[Litestar], csrf: dict[str, str]
) -> None:
    refused = await client.post(
        "/documents",
        files={"file": ("tool.bin", b"\x00\x01\x02MZ\x90binary", "application/octet-stream")},
        data={"scope": "private", **form_token(csrf)},
        follow_redirects=False,
    )
    assert refused.status_code == 400
    assert_full_page(refused.text)
    assert "Upload refused." in refused.text
    assert 'id="upload-form"' in refused.text, "the form is there to try again"


async def test_upload_retry_and_delete_with_htmx_answer_the_list_fragment(
    client: AsyncTestClient[Litestar], csrf: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/documents",
        files={"file": ("broken.pdf", BROKEN_PDF, "application/pdf")},
        data={"scope": "private"},
        headers={**HTMX, **csrf},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.text.lstrip().startswith('<div id="document-list"') and "<html" not in uploaded.text
    assert uploaded.headers["vary"] == "HX-Request"
    document_id = re.search(r'id="document-([0-9a-f]{24})"', uploaded.text).group(1)  # type: ignore[union-attr]
    await wait_for_status(client, document_id, "failed")

    retried = await client.post(f"/documents/{document_id}/retry", headers={**HTMX, **csrf})
    assert retried.status_code == 200, retried.text
    assert retried.text.lstrip().startswith('<div id="document-list"') and "<html" not in retried.text
    assert re.search(rf'id="document-{document_id}" data-status="(queued|processing|failed)"', retried.text)
    await wait_for_status(client, document_id, "failed")

    boosted = await client.post(
        f"/documents/{document_id}/retry", headers={**HTMX, "HX-Boosted": "true", **csrf}, follow_redirects=False
    )
    assert boosted.status_code == 303, "a boosted form swaps the whole body: it gets the page"
    await wait_for_status(client, document_id, "failed")

    deleted = await client.post(f"/documents/{document_id}/delete", headers={**HTMX, **csrf})
    assert deleted.status_code == 200
    assert deleted.text.lstrip().startswith('<div id="document-list"') and "<html" not in deleted.text
    assert f'id="document-{document_id}"' not in deleted.text

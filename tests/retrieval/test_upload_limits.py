"""Bounds on what an upload may cost: zip bounds read from the archive's directory, parse workers with memory,
CPU and time limits, 413 ``payload_too_large`` before a body is read, per-user OCR and speech budgets, and
original files whose names are outside Latin-1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.platform.errors import Busy
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.parsing import ArchiveLimits, HeavyWork, WorkerLimits, parse_document
from medchat.retrieval.parsing.archive import check_archive
from medchat.retrieval.routes import content_disposition
from medchat.settings import Settings
from tests.support import hostile_work
from tests.support.accounts import RegisterUser
from tests.support.documents import upload, wait_until_final
from tests.support.files import word_document
from tests.support.hostile_files import MB, billion_laughs_docx, many_members_docx, zip_bomb_docx

HTMX = {"HX-Request": "true"}


@asynccontextmanager
async def app_with(settings: Settings, **overrides: object) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings.model_copy(update=overrides))) as client:
        yield client


# --- zip bounds ------------------------------------------------------------------------------------


def test_an_ordinary_docx_is_within_the_bounds() -> None:
    check_archive(word_document(), ArchiveLimits())


def test_a_zip_bomb_is_refused_from_its_directory() -> None:
    bomb = zip_bomb_docx(inflated_mb=30)
    with pytest.raises(UnreadableDocument, match=r"expand to 3\d MB; at most 20 MB"):
        check_archive(bomb, ArchiveLimits(max_extracted_bytes=20 * MB))
    with pytest.raises(UnreadableDocument, match=r"word/document\.xml would expand \d+ times; at most 100"):
        check_archive(bomb, ArchiveLimits(max_ratio=100))
    with pytest.raises(UnreadableDocument, match="expand"):
        parse_document(bomb, ArchiveLimits(max_ratio=100))


def test_an_archive_of_too_many_parts_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match="parts; at most 50"):
        check_archive(many_members_docx(60), ArchiveLimits(max_members=50))


def test_a_billion_laughs_docx_is_unreadable_not_a_crash() -> None:
    with pytest.raises(UnreadableDocument, match="could not be read"):
        parse_document(billion_laughs_docx())


# --- parse workers ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_worker_past_its_limits_fails_the_work_and_is_replaced() -> None:
    heavy = HeavyWork(
        concurrency=1, limits=WorkerLimits(memory_bytes=1024 * MB, cpu_seconds=2, timeout_seconds=8), wait_seconds=0
    )
    try:
        assert await heavy.run(hostile_work.echo, "warm") == "warm"
        with pytest.raises(UnreadableDocument, match="more than the 1024 MB of memory"):
            await heavy.run(hostile_work.allocate, 2048)
        with pytest.raises(UnreadableDocument, match="2 s of processing time"):
            await heavy.run(hostile_work.spin, 30)
        assert await heavy.run(hostile_work.echo, "replaced") == "replaced"
        with pytest.raises(UnreadableDocument, match="longer than 8 s"):
            await heavy.run(hostile_work.sleep, 60)
        assert await heavy.run(hostile_work.echo, "again") == "again"
    finally:
        heavy.close()


async def test_a_request_waits_briefly_for_a_worker_then_is_told_busy() -> None:
    heavy = HeavyWork(
        concurrency=1, limits=WorkerLimits(memory_bytes=1024 * MB, cpu_seconds=60, timeout_seconds=60), wait_seconds=0.2
    )
    try:
        holding = asyncio.create_task(heavy.run(hostile_work.sleep, 30))
        await asyncio.sleep(0)  # the task takes the only worker
        with pytest.raises(Busy) as refused:
            await heavy.run(hostile_work.echo, "late", wait=False)
        assert refused.value.headers["Retry-After"] == "1"
        holding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
    finally:
        heavy.close()


# --- ingestion ends every parser failure as failed ---------------------------------------------------


async def test_a_billion_laughs_docx_ends_failed_with_a_reason(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    queued = await upload(client, user.headers, billion_laughs_docx(), filename="laughs.docx")
    final = await wait_until_final(client, user.headers, queued["id"])
    assert final["status"] == "failed"
    assert "could not be read" in final["error"]


# --- 413 payload_too_large ---------------------------------------------------------------------------


async def test_an_oversized_image_for_ocr_answers_payload_too_large(
    settings: Settings, register_user: RegisterUser
) -> None:
    async with app_with(settings, max_media_mb=1) as client:
        user = await register_user(client)
        response = await client.post(
            "/api/v1/ocr", files={"file": ("scan.png", b"\x89PNG" + b"0" * (2 * MB), "image/png")}, headers=user.headers
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert "1 MB" in response.json()["detail"]


async def test_the_framework_ceiling_also_answers_payload_too_large(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    response = await client.post("/api/v1/search", content=b"{" + b" " * (11 * MB) + b"}", headers=user.headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_an_oversized_upload_through_the_page_shows_the_reason(
    settings: Settings, register_user: RegisterUser
) -> None:
    async with app_with(settings, max_upload_mb=1) as client:
        user = await register_user(client)
        await client.get("/login")
        csrf = client.cookies.get("medchat_csrf", "")
        await client.post("/login", data={"email": user.email, "password": user.password, "_csrf_token": csrf})
        response = await client.post(
            "/documents/",
            files={"file": ("big.txt", b"a" * (2 * MB), "text/plain")},
            data={"scope": "private"},
            headers={**HTMX, "X-CSRFToken": client.cookies.get("medchat_csrf", csrf)},
        )
        assert response.status_code == 413
        assert 'data-code="payload_too_large"' in response.text
        assert "larger than the 1 MB limit" in response.text
        assert response.headers["HX-Retarget"] == "#flash"


# --- OCR and speech budgets ----------------------------------------------------------------------------


async def test_ocr_and_speech_are_limited_per_user_and_hour(settings: Settings, register_user: RegisterUser) -> None:
    async with app_with(settings, media_requests_per_hour_user=2) as client:
        alice, bob = await register_user(client), await register_user(client)
        not_an_image = {"file": ("notes.txt", b"just some words", "text/plain")}
        for _ in range(2):
            assert (await client.post("/api/v1/ocr", files=not_an_image, headers=alice.headers)).status_code == 415
        refused = await client.post("/api/v1/ocr", files=not_an_image, headers=alice.headers)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        # Speech has its own budget, and Bob his.
        assert (await client.post("/api/v1/voice", files=not_an_image, headers=alice.headers)).status_code == 415
        assert (await client.post("/api/v1/ocr", files=not_an_image, headers=bob.headers)).status_code == 415


# --- original files with any name ------------------------------------------------------------------------


def test_content_disposition_carries_any_name_with_an_ascii_fallback() -> None:
    header = content_disposition("attachment", "患者記録.txt")
    assert header == "attachment; filename=\"____.txt\"; filename*=UTF-8''%E6%82%A3%E8%80%85%E8%A8%98%E9%8C%B2.txt"
    header.encode("latin-1")
    assert content_disposition("inline", 'a "quoted" name.pdf').startswith('inline; filename="a _quoted_ name.pdf";')


@pytest.mark.parametrize("filename", ["患者記録.txt", "emoji_🩺.txt"])
async def test_an_original_with_a_non_latin_name_downloads(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, filename: str
) -> None:
    user = await register_user(client)
    queued = await upload(client, user.headers, b"Notes about the patient record.", filename=filename)
    response = await client.get(f"/documents/{queued['id']}/file", headers=user.headers)
    assert response.status_code == 200
    assert response.content == b"Notes about the patient record."
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('inline; filename="')
    assert disposition.endswith(f"filename*=UTF-8''{quote(filename)}")

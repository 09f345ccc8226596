"""The knowledge base end to end: upload, background ingestion, search with citations, delete, isolation."""

from __future__ import annotations

import io

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image, ImageDraw, ImageFont

from medchat.platform import audit
from medchat.settings import Settings
from tests.support.accounts import RegisterUser
from tests.support.app import in_app_loop
from tests.support.documents import upload, wait_until_final
from tests.support.files import three_page_pdf


async def search(client: AsyncTestClient[Litestar], headers: dict[str, str], query: str) -> list[dict]:
    response = await client.post("/api/v1/search", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_a_pdf_becomes_ready_and_is_cited_at_its_page_then_deleted(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    pdf = three_page_pdf()
    queued = await upload(client, user.headers, pdf)
    assert queued["status"] == "queued"
    assert queued["media_type"] == "application/pdf"

    ready = await wait_until_final(client, user.headers, queued["id"])
    assert ready["status"] == "ready", ready["error"]
    assert (ready["pages"], ready["progress"]) == (3, 1.0)
    assert ready["chunks"] >= 3

    results = await search(client, user.headers, "Can someone on warfarin drink cranberry juice?")
    assert results, "the page 3 passage is found"
    assert (results[0]["document_id"], results[0]["page"]) == (queued["id"], 3)
    assert "cranberry" in results[0]["snippet"].lower()

    original = await client.get(f"/documents/{queued['id']}/file", headers=user.headers)
    assert original.status_code == 200
    assert original.content == pdf
    assert original.headers["content-type"] == "application/pdf"

    assert (await client.delete(f"/api/v1/documents/{queued['id']}", headers=user.headers)).status_code == 204
    assert await search(client, user.headers, "Can someone on warfarin drink cranberry juice?") == []
    assert (await client.get(f"/api/v1/documents/{queued['id']}", headers=user.headers)).status_code == 404
    trail = await in_app_loop(client, audit.query(resource_type="document", resource_id=queued["id"]))
    assert [(entry.action, entry.actor_id) for entry in reversed(trail.items)] == [
        ("create", user.id),
        ("read", user.id),
        ("delete", user.id),
    ]


async def test_private_passages_stay_with_their_owner(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    owner, other = await register_user(client), await register_user(client)
    admin = await register_user(client, role="admin")
    private = await upload(
        client, owner.headers, b"# Clinic notes\n\nThe zebra protocol applies to all night shifts.", filename="notes.md"
    )
    shared = await upload(
        client,
        admin.headers,
        b"Shared leaflet: the zebra crossing outside is closed on Mondays.",
        filename="leaflet.txt",
        scope="shared",
    )
    for document, headers in ((private, owner.headers), (shared, admin.headers)):
        assert (await wait_until_final(client, headers, document["id"]))["status"] == "ready"

    assert {result["document_id"] for result in await search(client, owner.headers, "zebra protocol night shifts")} >= {
        private["id"]
    }
    for outsider in (other, admin):
        found = {
            result["document_id"] for result in await search(client, outsider.headers, "zebra protocol night shifts")
        }
        assert private["id"] not in found
        assert (await client.get(f"/api/v1/documents/{private['id']}", headers=outsider.headers)).status_code == 404
        assert (await client.get(f"/documents/{private['id']}/file", headers=outsider.headers)).status_code == 404
        listed = (await client.get("/api/v1/documents/", headers=outsider.headers)).json()["items"]
        assert private["id"] not in {item["id"] for item in listed}
        assert shared["id"] in {item["id"] for item in listed}
    assert (await client.delete(f"/api/v1/documents/{private['id']}", headers=other.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/documents/{shared['id']}", headers=other.headers)).status_code == 403


async def test_uploads_are_refused_clearly(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    user = await register_user(client)
    shared = await client.post(
        "/api/v1/documents/",
        files={"file": ("a.txt", b"hello there", "text/plain")},
        data={"scope": "shared"},
        headers=user.headers,
    )
    assert (shared.status_code, shared.json()["code"]) == (403, "forbidden")
    binary = await client.post(
        "/api/v1/documents/", files={"file": ("fake.pdf", b"\x00\x01\x02MZ\x90binary", "x/y")}, headers=user.headers
    )
    assert (binary.status_code, binary.json()["code"]) == (415, "unsupported_media_type")
    empty = await client.post("/api/v1/documents/", files={"file": ("e.txt", b"", "text/plain")}, headers=user.headers)
    assert empty.status_code == 415
    anonymous = await client.post("/api/v1/documents/", files={"file": ("a.txt", b"hello", "text/plain")})
    assert anonymous.status_code == 401
    blank = await client.post("/api/v1/search", json={"query": "   "}, headers=user.headers)
    assert (blank.status_code, blank.json()["code"]) == (400, "validation_failed")


async def test_the_size_limit_is_checked_on_the_bytes(settings: Settings, register_user: RegisterUser) -> None:
    from medchat.app import create_app

    small = Settings.load(**{**settings.model_dump(), "max_upload_mb": 1})
    async with AsyncTestClient(app=create_app(small)) as client:
        user = await register_user(client)
        response = await client.post(
            "/api/v1/documents/",
            files={"file": ("big.txt", b"a" * (1024 * 1024 + 10), "text/plain")},
            headers=user.headers,
        )
        assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


async def test_an_unreadable_document_fails_with_a_reason_and_can_be_retried(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    broken = await upload(client, user.headers, b"%PDF-1.7\n this is not really a pdf at all", filename="broken.pdf")
    failed = await wait_until_final(client, user.headers, broken["id"])
    assert failed["status"] == "failed"
    assert failed["error"]
    retried = await client.post(f"/api/v1/documents/{broken['id']}/retry", headers=user.headers)
    assert (retried.status_code, retried.json()["status"]) == (202, "queued")
    assert (await wait_until_final(client, user.headers, broken["id"]))["status"] == "failed"


def text_image(text: str) -> bytes:
    image = Image.new("RGB", (1400, 200), "white")
    ImageDraw.Draw(image).text((40, 60), text, fill="black", font=ImageFont.load_default(size=48))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
async def test_ocr_endpoint_reads_an_image(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/v1/ocr",
        files={"file": ("scan.png", text_image("Take two tablets daily"), "image/png")},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    assert "two tablets daily" in response.json()["text"].lower()
    wrong = await client.post(
        "/api/v1/ocr", files={"file": ("a.txt", b"plain words", "text/plain")}, headers=user.headers
    )
    assert wrong.status_code == 415


async def test_the_list_pages_with_the_cursors_it_hands_out(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    owner, other = await register_user(client), await register_user(client)
    notes = [(f"n{index}.txt", f"Note {index}: rest and fluids.".encode()) for index in range(3)]
    mine = [(await upload(client, owner.headers, data, filename=name))["id"] for name, data in notes]
    await upload(client, other.headers, b"Someone else's private note.", filename="other.txt")

    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/documents/", params=query, headers=owner.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine)), "newest first, each once, only what the owner may see"

    forged = await client.get("/api/v1/documents/", params={"cursor": mine[1]}, headers=owner.headers)
    assert (forged.status_code, forged.json()["code"]) == (400, "validation_failed")


async def test_an_export_lists_the_users_documents_and_deletion_removes_them(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    uploaded = await upload(client, user.headers, b"Clinic notes: ice the joint.", filename="clinic-notes.txt")
    await wait_until_final(client, user.headers, uploaded["id"])

    export = await client.get("/api/v1/users/me/export", headers=user.headers)
    assert export.status_code == 200, export.text
    [document] = export.json()["documents"]
    assert (document["id"], document["filename"], document["status"]) == (uploaded["id"], "clinic-notes.txt", "ready")
    assert "owner_id" not in document

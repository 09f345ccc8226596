"""Originals in MongoDB GridFS on the embedded store (nx-27017): an upload streamed in, downloaded whole and
in byte ranges, deleted with its document; ordinary GridFS to other tools; a 40 MB file streamed both ways in
little memory; and the data-dir store (``MEDCHAT_ORIGINALS_STORE=files``) still working."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import gridfs
import pytest
from bson import ObjectId
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from medchat.app import create_app
from medchat.platform.errors import UnsupportedMediaType
from medchat.retrieval.originals.gridfs import CHUNK_BYTES, GridFSOriginalStore
from medchat.retrieval.originals.incoming import SNIFF_BYTES, Incoming
from medchat.retrieval.parsing import detect_media_type
from medchat.settings import Settings
from tests.support.accounts import RegisterUser
from tests.support.documents import upload, wait_until_final
from tests.support.files import word_document

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def docx_of_size(size: int) -> bytes:
    """A DOCX padded to about ``size`` bytes with a stored (uncompressed) picture of random bytes: its text
    parses in a moment, and every offset of the file holds a byte a wrong range would not reproduce."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(word_document())) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("word/media/picture.bin", random.Random(16).randbytes(size), zipfile.ZIP_STORED)
    return buffer.getvalue()


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The test's database, read directly (not through the app)."""
    with MongoClient(settings.mongodb_uri) as client:
        yield client[settings.mongodb_database]


def stored_chunks(database: Database, document_id: str) -> list[dict]:
    return list(database["originals.chunks"].find({"files_id": ObjectId(document_id)}, sort=[("n", 1)]))


async def get_file(client: AsyncTestClient[Litestar], headers: dict[str, str], document_id: str, byte_range: str = ""):
    return await client.get(
        f"/documents/{document_id}/file", headers={**headers, **({"Range": byte_range} if byte_range else {})}
    )


async def test_an_original_is_streamed_through_gridfs_read_in_ranges_and_deleted_with_its_document(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, database: Database
) -> None:
    user = await register_user(client)
    original = docx_of_size(3 * CHUNK_BYTES)  # four GridFS chunks, the last a short one
    queued = await upload(client, user.headers, original, filename="guide.docx")
    document_id, length = queued["id"], len(original)

    # The standard GridFS layout, written last-document-last: other tools read it as ordinary GridFS.
    file_document = database["originals.files"].find_one({"_id": ObjectId(document_id)})
    assert file_document is not None
    assert (file_document["length"], file_document["chunkSize"], file_document["filename"]) == (
        length,
        CHUNK_BYTES,
        "guide.docx",
    )
    assert "uploadDate" in file_document and "metadata" in file_document
    chunks = stored_chunks(database, document_id)
    assert [(chunk["n"], len(chunk["data"])) for chunk in chunks] == [
        (n, min(CHUNK_BYTES, length - n * CHUNK_BYTES)) for n in range(4)
    ]
    bucket = gridfs.GridFSBucket(database, bucket_name="originals")
    assert bucket.open_download_stream(ObjectId(document_id)).read() == original

    # The ingestion job reads the original back from GridFS to parse it.
    ready = await wait_until_final(client, user.headers, document_id)
    assert ready["status"] == "ready", ready["error"]

    whole = await get_file(client, user.headers, document_id)
    assert whole.status_code == 200
    assert whole.content == original
    assert (whole.headers["accept-ranges"], whole.headers["content-length"]) == ("bytes", str(length))
    assert whole.headers["content-disposition"].startswith("attachment;")

    across_a_chunk = (CHUNK_BYTES - 100, CHUNK_BYTES + 99)
    for asked, (first, last) in {
        "bytes=0-99": (0, 99),
        f"bytes={across_a_chunk[0]}-{across_a_chunk[1]}": across_a_chunk,
        "bytes=-500": (length - 500, length - 1),
        f"bytes={2 * CHUNK_BYTES}-": (2 * CHUNK_BYTES, length - 1),
        f"bytes=10-{length + 1000}": (10, length - 1),
    }.items():
        part = await get_file(client, user.headers, document_id, asked)
        assert part.status_code == 206, asked
        assert part.content == original[first : last + 1], asked
        assert part.headers["content-range"] == f"bytes {first}-{last}/{length}", asked
        assert part.headers["content-length"] == str(last - first + 1), asked

    past_the_end = await get_file(client, user.headers, document_id, f"bytes={length}-")
    assert past_the_end.status_code == 416
    assert past_the_end.headers["content-range"] == f"bytes */{length}"
    several = await get_file(client, user.headers, document_id, "bytes=0-9,20-29")
    assert (several.status_code, several.content) == (200, original)

    stranger = await register_user(client)
    assert (await get_file(client, stranger.headers, document_id, "bytes=0-9")).status_code == 404

    assert (await client.delete(f"/api/v1/documents/{document_id}", headers=user.headers)).status_code == 204
    assert database["originals.files"].find_one({"_id": ObjectId(document_id)}) is None
    assert stored_chunks(database, document_id) == []


async def test_the_data_dir_store_still_keeps_originals_and_gridfs_reads_what_it_left(
    settings: Settings, register_user: RegisterUser, database: Database
) -> None:
    files_settings = settings.model_copy(update={"originals_store": "files"})
    original = docx_of_size(300 * 1024)
    async with AsyncTestClient(app=create_app(files_settings)) as client:
        user = await register_user(client)
        document_id = (await upload(client, user.headers, original, filename="guide.docx"))["id"]
        stored = files_settings.uploads_dir / document_id[:2] / document_id
        assert stored.read_bytes() == original
        assert database["originals.files"].find_one({"_id": ObjectId(document_id)}) is None

        ready = await wait_until_final(client, user.headers, document_id)
        assert ready["status"] == "ready", ready["error"]
        assert (await get_file(client, user.headers, document_id)).content == original
        part = await get_file(client, user.headers, document_id, "bytes=-1000")
        assert (part.status_code, part.content) == (206, original[-1000:])

    # The default store on the same data dir: the file written before is still served, and deleted with it.
    async with AsyncTestClient(app=create_app(settings)) as client:
        part = await get_file(client, user.headers, document_id, "bytes=100-")
        assert (part.status_code, part.content) == (206, original[100:])
        assert (await client.delete(f"/api/v1/documents/{document_id}", headers=user.headers)).status_code == 204
        assert not stored.exists()


async def test_an_upload_that_breaks_off_leaves_nothing_stored(settings: Settings, database: Database) -> None:
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri)
    store = GridFSOriginalStore(lambda: client[settings.mongodb_database], chunk_bytes=1024)
    key = str(ObjectId())

    async def breaks_off() -> AsyncIterator[bytes]:
        yield b"x" * 5000
        assert len(stored_chunks(database, key)) == 4, "a full batch is written as it arrives"
        raise ConnectionResetError("the client went away")

    try:
        with pytest.raises(ConnectionResetError):
            await store.save(key, breaks_off(), filename="broken.pdf")
    finally:
        await client.close()
    assert database["originals.files"].find_one({"_id": ObjectId(key)}) is None
    assert stored_chunks(database, key) == []


async def test_a_large_text_upload_is_typed_from_its_first_bytes_even_when_they_cut_a_character() -> None:
    lines = b"Blood pressure rarely causes symptoms.\n" * (SNIFF_BYTES // 32)
    text = lines[: SNIFF_BYTES - 2] + "は".encode() * 1000  # the first SNIFF_BYTES end inside a character
    with pytest.raises(UnsupportedMediaType):
        detect_media_type(text[:SNIFF_BYTES])
    assert await Incoming.of(text).media_type() == "text/plain"


@pytest.mark.slow
def test_a_40_mb_original_is_streamed_in_and_out_in_little_memory(settings: Settings) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "MEDCHAT_ENVIRONMENT": "test",
        "MEDCHAT_DATA_DIR": str(settings.data_dir),
        "MEDCHAT_MONGODB_URI": str(settings.mongodb_uri),
        "MEDCHAT_MONGODB_DATABASE": settings.mongodb_database,
        "MEDCHAT_REDIS_URL": str(settings.redis_url),
        "MEDCHAT_QDRANT_COLLECTION": settings.qdrant_collection,
        "MEDCHAT_SECRET_KEY": str(settings.secret_key),
        "MEDCHAT_MAX_UPLOAD_MB": "64",
    }
    environment.pop("MEDCHAT_QDRANT_URL", None)
    if settings.qdrant_url:
        environment["MEDCHAT_QDRANT_URL"] = settings.qdrant_url
    measured = subprocess.run(
        [sys.executable, "-m", "tests.support.original_memory", "40"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert measured.returncode == 0, measured.stderr[-3000:]
    report = json.loads(measured.stdout.strip().splitlines()[-1])
    assert report["media_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert report["size_bytes"] == report["downloaded_bytes"] > 40 * MB
    assert report["same_bytes"]
    assert report["upload_peak_growth_kib"] < 20 * 1024, report
    assert report["download_peak_growth_kib"] < 20 * 1024, report

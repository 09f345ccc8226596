"""Run as ``python -m tests.support.original_memory SIZE_MB`` (settings from ``MEDCHAT_*``): upload a SIZE_MB
DOCX through the document service into the original store and download it back, and print, as JSON, how far
this process's peak resident memory rose above its resident memory before each (``/proc/self/status``).

A process of its own, so the peak is this work's alone; nothing consumes the ingestion job the upload queues,
so the parse (which reads a document whole) does not count. The upload is a Litestar ``UploadFile``, as the
multipart parser leaves it: a spooled temporary file, on disk past 1 MB.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path

from litestar.datastructures import UploadFile

from medchat.platform.identity import Principal
from medchat.retrieval import DocumentService
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.files import word_document

MB = 1024 * 1024
OWNER = Principal(id="nurse-1", email="nurse@example.org", full_name="Nurse", role="user")


def status_kib(field: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def reset_peak() -> int:
    """Start the peak (VmHWM) again from the present resident size (``clear_refs`` 5, Linux 4.0+); returns it."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmRSS")


def large_docx(size_mb: int) -> UploadFile:
    """A DOCX carrying ``size_mb`` MB of random bytes as a stored (uncompressed) picture, written a MB at a time."""
    upload = UploadFile(content_type="application/octet-stream", filename="large.docx")
    with zipfile.ZipFile(io.BytesIO(word_document())) as source, zipfile.ZipFile(upload.file, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        with target.open(zipfile.ZipInfo("word/media/picture.bin"), "w", force_zip64=True) as picture:
            for _ in range(size_mb):
                picture.write(os.urandom(MB))
    return upload


async def measure(size_mb: int) -> dict[str, object]:
    runtime = await Runtime.open(Settings.load())
    try:
        documents = runtime.services.get(DocumentService)
        upload = large_docx(size_mb)
        sent = hashlib.sha256()
        upload.file.seek(0)
        while chunk := upload.file.read(MB):
            sent.update(chunk)

        before = reset_peak()
        view = await documents.upload(owner=OWNER, filename="large.docx", data=upload.file, scope="private")
        upload_growth = status_kib("VmHWM") - before

        original = await documents.original(OWNER, document_id=view.id)
        received, length = hashlib.sha256(), 0
        before = reset_peak()
        async for chunk in original.stream():
            received.update(chunk)
            length += len(chunk)
        download_growth = status_kib("VmHWM") - before
        return {
            "document_id": view.id,
            "media_type": view.media_type,
            "size_bytes": view.size_bytes,
            "downloaded_bytes": length,
            "same_bytes": sent.hexdigest() == received.hexdigest(),
            "upload_peak_growth_kib": upload_growth,
            "download_peak_growth_kib": download_growth,
        }
    finally:
        await runtime.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(int(sys.argv[1])))))

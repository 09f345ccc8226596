"""An ingestion job whose document was queued again while it ran (a sweep took its process for dead, or an
operator queued it again) must not overwrite the newer job's state with its own late writes.

Real stores, the real embedding model; the old job runs while the document is queued again under it.
"""

from __future__ import annotations

import asyncio

from bson import ObjectId

from medchat.platform.identity import Principal
from medchat.retrieval.models import SourceDocument
from medchat.retrieval.services import DocumentService
from medchat.runtime import Runtime

OWNER = Principal(id="nurse-1", email="nurse@example.org", full_name="Nurse", role="user")
PARAGRAPHS = 12
"""About 16 passages: embedding them takes a second or more, the time the old job is overtaken in."""


def leaflet_text() -> bytes:
    paragraphs = [
        f"Section {number}. Patients on regimen {number} have their blood pressure checked every "
        f"{number % 12 + 1} weeks, and dose {number} is adjusted when kidney function changes. " * 10
        for number in range(PARAGRAPHS)
    ]
    return "\n\n".join(paragraphs).encode()


async def stored(document_id: str) -> SourceDocument:
    found = await SourceDocument.get(ObjectId(document_id))
    assert found is not None
    return found


async def until_embedding(document_id: str) -> None:
    """Bounded: the old job reaches its embedding stage within seconds."""
    async with asyncio.timeout(60):
        while (await stored(document_id)).stage != "embedding":
            await asyncio.sleep(0.01)


async def test_the_late_writes_of_a_superseded_job_do_not_overwrite_the_newer_job(runtime: Runtime) -> None:
    documents = runtime.services.get(DocumentService)
    upload = await documents.upload(owner=OWNER, filename="leaflet.txt", data=leaflet_text(), scope="private")
    old_job = (await stored(upload.id)).job_id
    assert old_job is not None

    running = asyncio.create_task(documents.ingest(upload.id, job_id=old_job))
    await until_embedding(upload.id)
    await documents.queue_reindex(upload.id)  # queued again under a new job while the old one embeds
    queued_again = await stored(upload.id)
    await asyncio.wait_for(running, timeout=120)

    after = await stored(upload.id)
    assert queued_again.job_id != old_job and queued_again.status == "queued"
    assert (after.status, after.job_id, after.progress, after.chunks) == ("queued", queued_again.job_id, 0.0, 0), (
        "the old job finished without touching the state of the job that replaced it"
    )

"""Small documents are ingested in batches: the job of the first takes the others still queued, and each
document keeps its own claim, state, failure and superseding; ``medchat ingest`` shows one progress bar.

Real stores and the real embedding model. The jobs are run directly (no worker), as a worker would run
them, so which job takes which documents is known.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bson import ObjectId
from prometheus_client import REGISTRY
from rich.console import Console

from medchat.ingest import ingest_paths
from medchat.platform.identity import Principal
from medchat.retrieval import DocumentService, DocumentView, SearchScope
from medchat.retrieval.models import SourceDocument
from medchat.runtime import Runtime
from medchat.settings import Settings

ADMIN = Principal(id="admin-1", email="admin@example.org", full_name="Admin", role="admin")
CONDITIONS = ["gout", "asthma", "eczema", "psoriasis", "migraine", "anaemia"]


def leaflet(condition: str, *, paragraphs: int = 1) -> bytes:
    sentences = [
        f"Part {number} about {condition}: the clinic reviews {condition} treatment every {number + 2} weeks, "
        f"and the {condition} nurse explains each change of dose to the patient and their family. " * 8
        for number in range(paragraphs)
    ]
    return "\n\n".join(sentences).encode()


async def stored(document_id: str) -> SourceDocument:
    found = await SourceDocument.get(ObjectId(document_id))
    assert found is not None
    return found


async def upload_all(documents: DocumentService, files: dict[str, bytes]) -> list[DocumentView]:
    return [
        await documents.upload(owner=ADMIN, filename=name, data=data, scope="shared") for name, data in files.items()
    ]


async def run_job(documents: DocumentService, view: DocumentView) -> None:
    """What the worker's ``ingest_document`` job does for the document's queued job."""
    await documents.ingest_queued(view.id, job_id=(await stored(view.id)).job_id)


def ready_count() -> float:
    return REGISTRY.get_sample_value("medchat_ingestion_jobs_total", {"outcome": "ready"}) or 0.0


async def test_small_documents_queued_together_are_ingested_by_one_job_and_searchable(runtime: Runtime) -> None:
    documents = runtime.services.get(DocumentService)
    views = await upload_all(documents, {f"{condition}.txt": leaflet(condition) for condition in CONDITIONS})
    ready_before = ready_count()

    await run_job(documents, views[0])

    after = [await stored(view.id) for view in views]
    assert [document.status for document in after] == ["ready"] * len(views), [d.error for d in after]
    for document in after:
        assert document.chunks >= 1
        assert await runtime.retriever.store.count(document_id=str(document.id)) == document.chunks
    assert ready_count() == ready_before + len(views), "each document of the batch is counted once"
    found = await runtime.retriever.search("how often is eczema treatment reviewed", scope=SearchScope("anyone"))
    assert found[0].document_id == views[CONDITIONS.index("eczema")].id

    await run_job(documents, views[1])  # a batch-mate's own job, starting late: nothing left to do
    assert await stored(views[1].id) == after[1]
    assert ready_count() == ready_before + len(views)


async def test_one_unreadable_document_fails_alone_and_its_batch_mates_become_ready(runtime: Runtime) -> None:
    documents = runtime.services.get(DocumentService)
    files = {"gout.txt": leaflet("gout"), "broken.pdf": b"%PDF-1.7\n this is not really a pdf at all"}
    files |= {"asthma.txt": leaflet("asthma")}
    views = await upload_all(documents, files)

    await run_job(documents, views[0])

    gout, broken, asthma = [await stored(view.id) for view in views]
    assert (gout.status, asthma.status) == ("ready", "ready")
    assert broken.status == "failed" and broken.error
    assert await runtime.retriever.store.count(document_id=views[1].id) == 0


async def test_a_document_deleted_while_its_batch_embeds_is_not_indexed(runtime: Runtime) -> None:
    documents = runtime.services.get(DocumentService)
    files = {f"{condition}.txt": leaflet(condition, paragraphs=6) for condition in CONDITIONS}
    views = await upload_all(documents, files)
    deleted = views[2]

    batch = asyncio.create_task(run_job(documents, views[0]))
    async with asyncio.timeout(60):
        while (await stored(deleted.id)).stage != "embedding":
            await asyncio.sleep(0.01)
    assert not batch.done(), "the deletion lands while the batch embeds"
    await documents.delete(ADMIN, document_id=deleted.id)
    await asyncio.wait_for(batch, timeout=120)

    assert await SourceDocument.get(ObjectId(deleted.id)) is None
    assert await runtime.retriever.store.count(document_id=deleted.id) == 0, "its points were removed"
    others = [await stored(view.id) for view in views if view is not deleted]
    assert {document.status for document in others} == {"ready"}


async def test_a_document_queued_again_while_its_batch_embeds_is_left_to_its_new_job(runtime: Runtime) -> None:
    documents = runtime.services.get(DocumentService)
    files = {f"{condition}.txt": leaflet(condition, paragraphs=6) for condition in CONDITIONS[:4]}
    views = await upload_all(documents, files)
    requeued = views[3]

    batch = asyncio.create_task(run_job(documents, views[0]))
    async with asyncio.timeout(60):
        while (await stored(requeued.id)).stage != "embedding":
            await asyncio.sleep(0.01)
    await documents.queue_reindex(requeued.id)
    queued_again = await stored(requeued.id)
    await asyncio.wait_for(batch, timeout=120)

    after = await stored(requeued.id)
    assert (after.status, after.job_id, after.chunks) == ("queued", queued_again.job_id, 0)
    assert {(await stored(view.id)).status for view in views[:3]} == {"ready"}


async def test_medchat_ingest_shows_one_bar_for_many_files_and_a_summary(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    folder.mkdir()
    for number in range(30):
        condition = CONDITIONS[number % len(CONDITIONS)]
        (folder / f"answer-{number:02}.txt").write_text(
            f"Answer {number}: {condition} is reviewed every {number} weeks."
        )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf at all")
    captured = io.StringIO()

    outcomes = await ingest_paths(settings, [folder], console=Console(file=captured, width=200))

    assert [outcome.status for outcome in outcomes].count("ready") == 30
    assert [outcome.path.name for outcome in outcomes if outcome.status == "failed"] == ["broken.pdf"]
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    bars = [line for line in lines if line.startswith("ingesting")]
    assert len(bars) == 1 and "31/31 files" in bars[0], lines
    assert "files/s" in bars[0]
    assert sum("answer-" in line for line in lines) <= 1, "no row per file, at most the current one on the bar"
    summary = next(line for line in lines if "files ready" in line)
    assert summary.startswith("30 of 31 files ready") and "passages" in summary
    assert lines[-1].startswith(str(folder / "broken.pdf")), "the failures are listed after the bar"

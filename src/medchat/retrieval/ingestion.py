"""Ingestion, the arq job's body: claim a document, parse, chunk, embed and index it, and requeue the
documents whose ingestion died with its process.

Every write a job makes is conditional on the document still naming that job, so a job superseded by a
requeue (or a deletion) stops at its next write instead of overwriting the newer job's state.

Each run is the span ``retrieval.ingest`` (children ``retrieval.parse``, ``retrieval.chunk``,
``retrieval.index``) and is counted and timed by outcome in ``INGESTION_JOBS`` and ``INGESTION_DURATION``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from bson import ObjectId

from medchat.platform.clock import utcnow
from medchat.platform.errors import UnsupportedMediaType
from medchat.platform.instances import InstanceHeartbeat
from medchat.platform.metrics import INGESTION_DURATION, INGESTION_JOBS
from medchat.platform.spans import TRACER
from medchat.retrieval.chunking import Chunk, chunk_document
from medchat.retrieval.document import ParsedDocument
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.models import SourceDocument
from medchat.retrieval.originals import OriginalStore
from medchat.retrieval.parsing import IN_PROCESS_TYPES, ArchiveLimits, HeavyWork, detect_media_type, parse_document
from medchat.retrieval.search import INDEX_VERSION, DocumentInfo, Retriever
from medchat.settings import Settings

log = structlog.get_logger(__name__)

MAX_INGEST_ATTEMPTS = 3
Outcome = Literal["ready", "failed", "retried", "superseded"]
"""How an ingestion job ended (``INGESTION_JOBS``): superseded covers a document deleted or queued again."""
PROGRESS_WRITE_INTERVAL_SECONDS = 0.5
PARSED_SHARE_OF_PROGRESS = 0.1
"""Progress reported once parsing is done; embedding fills the rest."""


class TransientIngestError(Exception):
    """Ingestion failed for a reason that may pass (a store not answering): the job retries."""


class Superseded(Exception):
    """The document no longer names the running job (queued again under another, or deleted): it stops."""


def claimed_fields(instance_id: str | None) -> dict[str, Any]:
    """What claiming a document for a job writes (besides its attempts counted up)."""
    return {
        "status": "processing",
        "stage": "parsing",
        "progress": 0.02,
        "error": None,
        "ingesting_instance": instance_id,
    }


async def stored_document(document_id: str) -> SourceDocument | None:
    """The document's record; None for a deleted one or a malformed id."""
    return await SourceDocument.get(ObjectId(document_id)) if ObjectId.is_valid(document_id) else None


def count_outcome(outcome: Outcome, seconds: float) -> None:
    """An ingestion job's end, in ``INGESTION_JOBS`` and ``INGESTION_DURATION``."""
    INGESTION_JOBS.labels(outcome=outcome).inc()
    INGESTION_DURATION.labels(outcome=outcome).observe(seconds)


def new_job_id(document: SourceDocument) -> str:
    return f"ingest:{document.id}:{time.time_ns()}"


async def update_document(document: SourceDocument, **fields: Any) -> None:
    """``$set`` the fields on the stored record (never re-creating one deleted meanwhile) and on ``document``."""
    fields["updated_at"] = utcnow()
    for name, value in fields.items():
        setattr(document, name, value)
    await SourceDocument.find_one({"_id": document.id}).update({"$set": fields})


async def set_if(document: SourceDocument, condition: dict[str, Any], fields: dict[str, Any]) -> bool:
    """``$set`` the fields (and ``updated_at``) on the stored record matching ``condition``, and on
    ``document`` when it matched; False when nothing matched (someone else changed the record first)."""
    fields["updated_at"] = utcnow()
    written = await SourceDocument.get_pymongo_collection().update_one(condition, {"$set": fields})
    if written.matched_count == 0:
        return False
    for name, value in fields.items():
        setattr(document, name, value)
    return True


class Ingestion:
    """The ingestion half of ``DocumentService`` (which provides the attributes below)."""

    _settings: Settings
    _files: OriginalStore
    _instances: InstanceHeartbeat | None
    _heavy: HeavyWork
    _archive_limits: ArchiveLimits

    if TYPE_CHECKING:

        @property
        def _indexer(self) -> Retriever: ...

        async def _enqueue(self, document: SourceDocument, *, job_id: str | None = None) -> None: ...

    async def ingest(self, document_id: str, *, job_id: str | None = None) -> None:
        """Parse, chunk, embed and index one document, moving its status along.

        A document that cannot be read fails with the reason; a store that does not answer raises
        ``TransientIngestError`` so the job is retried. Re-running replaces the document's passages.
        ``job_id`` is the queued job running this; a job the document no longer names (it was queued
        again meanwhile) does nothing, so one document is never ingested by two jobs at once.
        """
        started = time.perf_counter()
        outcome: Outcome | None = None  # stays None when cancelled: the job did not end, a sweep requeues it
        with TRACER.start_as_current_span("retrieval.ingest", attributes={"document.id": document_id}) as span:
            try:
                outcome = await self._ingest(document_id, job_id=job_id)
            except TransientIngestError:
                outcome = "retried"
                raise
            except Exception:
                outcome = "failed"
                raise
            finally:
                if outcome is not None:
                    span.set_attribute("retrieval.ingest.outcome", outcome)
                    count_outcome(outcome, time.perf_counter() - started)

    async def _ingest(self, document_id: str, *, job_id: str | None) -> Outcome:
        document = await stored_document(document_id)
        if document is None:
            log.info("ingest skipped: document deleted", document_id=document_id)
            return "superseded"
        if not await self._claim(document, job_id=job_id):
            log.info("ingest skipped: a newer job replaced this one", document_id=document_id, job_id=job_id)
            return "superseded"
        try:
            return await self._ingest_claimed(document)
        except Superseded:
            if await SourceDocument.get(document.id) is None:  # deleted while we were indexing
                await self._indexer.delete_document(document_id)
            log.info("ingest stopped: document queued again or deleted", document_id=document_id, job_id=job_id)
            return "superseded"

    async def _read_passages(self, document: SourceDocument) -> tuple[ParsedDocument, list[Chunk]]:
        """Parse and chunk ``document`` (spans ``retrieval.parse`` and ``retrieval.chunk``). Any reason it has
        no passage is ``UnreadableDocument``, whose detail the user is shown: any parser failure ends the
        document, never leaves it processing."""
        try:
            with TRACER.start_as_current_span("retrieval.parse", attributes={"document.id": str(document.id)}):
                parsed = await self._parse(document)
        except (UnreadableDocument, Superseded):
            raise
        except UnsupportedMediaType as error:
            raise UnreadableDocument(error.detail) from error
        except Exception as error:
            log.exception("parsing failed", document_id=str(document.id))
            raise UnreadableDocument(f"The file could not be read ({type(error).__name__}).") from error
        with TRACER.start_as_current_span("retrieval.chunk", attributes={"retrieval.pages": len(parsed.pages)}):
            chunks = await asyncio.to_thread(
                chunk_document,
                parsed.pages,
                chunk_tokens=self._settings.chunk_tokens,
                overlap_tokens=self._settings.chunk_overlap_tokens,
            )
        if not chunks:
            raise UnreadableDocument("No text was found in this file (a scan with nothing legible?).")
        return parsed, chunks

    async def _ingest_claimed(self, document: SourceDocument) -> Outcome:
        """The body of ``ingest`` once this job holds ``document``; every write it makes is ``_write_as_job``."""
        document_id = str(document.id)
        started = time.perf_counter()
        try:
            parsed, chunks = await self._read_passages(document)
        except UnreadableDocument as error:
            await self._fail(document, error.detail, as_job=True)
            return "failed"
        await self._write_as_job(
            document,
            title=(parsed.title or document.title)[:200],
            pages=len(parsed.pages),
            stage="embedding",
            progress=PARSED_SHARE_OF_PROGRESS,
        )
        info = DocumentInfo(
            document_id=document_id, owner_id=document.owner_id, scope=document.scope, title=document.title
        )
        try:
            result = await self._indexer.index_chunks(info, chunks, on_progress=self._progress_writer(document))
        except Superseded:
            raise
        except Exception as error:
            if document.attempts >= MAX_INGEST_ATTEMPTS:
                await self._fail(document, "The search index did not answer; retry the document later.", as_job=True)
                return "failed"
            raise TransientIngestError(str(error)) from error
        if await SourceDocument.get(document.id) is None:  # deleted while we were indexing
            await self._indexer.delete_document(document_id)
            return "superseded"
        await self._write_as_job(
            document,
            status="ready",
            stage=None,
            progress=1.0,
            chunks=result.chunks,
            index_version=INDEX_VERSION,
            ingesting_instance=None,
        )
        log.info(
            "document ready",
            document_id=document_id,
            pages=document.pages,
            chunks=result.chunks,
            seconds=round(time.perf_counter() - started, 2),
        )
        return "ready"

    async def _claim(self, document: SourceDocument, *, job_id: str | None) -> bool:
        """Mark the document ``processing`` by this instance, unless ``job_id`` is no longer its job.

        One conditional write: a sweep requeueing the document at the same moment changes its job first
        (then this job stops) or finds it owned by a live instance (then the sweep leaves it)."""
        condition: dict[str, Any] = {"_id": document.id}
        if job_id is not None and document.job_id is not None:
            if document.job_id != job_id:
                return False
            condition["job_id"] = job_id
        instance_id = self._instances.id if self._instances is not None else None
        fields = claimed_fields(instance_id) | {"attempts": document.attempts + 1}
        return await set_if(document, condition, fields)

    async def requeue_orphaned(self) -> int:
        """Queue again (under a new job id) every document whose ingestion died with its process: its
        instance's heartbeat has lapsed, or (a document from before instances were recorded) it made no
        progress for ``ingest_stale_minutes``. One that already died this way ``MAX_INGEST_ATTEMPTS`` times
        fails instead (a file that crashes the process must not crash it forever). Returns how many."""
        processing = await SourceDocument.find({"status": "processing"}).to_list()
        owners = {document.ingesting_instance for document in processing if document.ingesting_instance}
        alive: set[str] | None = set()
        if owners:
            try:
                alive = await self._instances.alive(owners) if self._instances is not None else None
            except Exception as error:  # noqa: BLE001 - skip the owned ones; the next sweep tries again
                log.warning("cannot tell which instances are alive; ingestions left for now", error=str(error))
                alive = None
        cutoff = utcnow() - timedelta(minutes=self._settings.ingest_stale_minutes)
        requeued = 0
        for document in processing:
            condition: dict[str, Any] = {"_id": document.id, "status": "processing"}
            if document.ingesting_instance:
                if alive is None or document.ingesting_instance in alive:
                    continue
                condition["ingesting_instance"] = document.ingesting_instance
            elif document.updated_at < cutoff:
                condition["updated_at"] = {"$lt": cutoff}
            else:
                continue
            if await self._requeue_orphan(document, condition):
                requeued += 1
        return requeued

    async def _requeue_orphan(self, document: SourceDocument, condition: dict[str, Any]) -> bool:
        if document.attempts >= MAX_INGEST_ATTEMPTS:
            reason = "Ingestion stopped with its server several times; retry the document, or check the file."
            fields: dict[str, Any] = {"status": "failed", "stage": None, "error": reason, "ingesting_instance": None}
        else:
            fields = {"status": "queued", "stage": None, "progress": 0.0, "ingesting_instance": None}
            fields["job_id"] = new_job_id(document)
        if not await set_if(document, condition, fields):  # another sweep, or the owner itself, got there first
            return False
        log.warning(
            "orphaned ingestion " + ("failed" if document.status == "failed" else "queued again"),
            document_id=str(document.id),
            dead_instance=condition.get("ingesting_instance"),
        )
        if document.status == "queued":
            await self._enqueue(document, job_id=document.job_id)
        return True

    async def _parse(self, document: SourceDocument) -> ParsedDocument:
        try:
            data = await self._files.read(document.storage_key)
        except FileNotFoundError:
            raise UnreadableDocument("The uploaded file is missing from storage.") from None
        if detect_media_type(data) in IN_PROCESS_TYPES:
            parsed = await asyncio.to_thread(parse_document, data)
        else:
            parsed = await self._heavy.run(parse_document, data, self._archive_limits)
        if parsed.is_empty:
            raise UnreadableDocument("No text was found in this file (a scan with nothing legible?).")
        return parsed

    def _progress_writer(self, document: SourceDocument) -> Callable[[int, int], Awaitable[None]]:
        last_write = 0.0

        async def write(done: int, total: int) -> None:
            nonlocal last_write
            now = time.monotonic()
            if done < total and now - last_write < PROGRESS_WRITE_INTERVAL_SECONDS:
                return
            last_write = now
            share = done / total if total else 1.0
            await self._write_as_job(
                document, progress=PARSED_SHARE_OF_PROGRESS + (1 - PARSED_SHARE_OF_PROGRESS) * share * 0.99
            )

        return write

    async def _fail(self, document: SourceDocument, reason: str, *, as_job: bool = False) -> None:
        """``as_job``: written by the ingestion job holding the document, so only while it still does."""
        write = self._write_as_job if as_job else self._update
        await write(document, status="failed", stage=None, error=reason)
        log.info("document failed", document_id=str(document.id), reason=reason)

    @staticmethod
    async def _write_as_job(document: SourceDocument, **fields: Any) -> None:
        """``_update`` for the ingestion job that claimed ``document``: written only while the stored record
        still names that job, else ``Superseded`` (a sweep took the job's process for dead and queued it
        again, or it was deleted), so a late write of the old job never overwrites the newer job's state."""
        if document.job_id is None:  # queued before jobs were recorded, or ingested directly by the CLI
            await update_document(document, **fields)
        elif not await set_if(document, {"_id": document.id, "job_id": document.job_id}, fields):
            raise Superseded

    _update = staticmethod(update_document)

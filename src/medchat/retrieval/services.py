"""The knowledge base: upload, list, delete and ingest documents (no HTTP here).

Visibility is one rule everywhere: a user sees shared documents and their own private ones. Admins
add and remove shared documents; they do not see other users' private documents.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, Literal, Protocol

import structlog
from bson import ObjectId
from redis.asyncio import Redis

from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import (
    DependencyUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
)
from medchat.platform.identity import Principal
from medchat.platform.instances import InstanceHeartbeat
from medchat.platform.pagination import Page, paginate
from medchat.platform.quota import Quota
from medchat.retrieval.chunking import chunk_document
from medchat.retrieval.document import ParsedDocument
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.models import FINAL_STATUSES, SourceDocument
from medchat.retrieval.parsing import (
    IN_PROCESS_TYPES,
    ArchiveLimits,
    HeavyWork,
    WorkerLimits,
    detect_media_type,
    ocr_image,
    parse_document,
    transcribe,
)
from medchat.retrieval.parsing.detection import AUDIO_TYPES, IMAGE_TYPES
from medchat.retrieval.search import INDEX_VERSION, DocumentInfo, Retriever
from medchat.retrieval.storage import FileStore
from medchat.settings import Settings

log = structlog.get_logger(__name__)

INGEST_JOB = "ingest_document"
MAX_INGEST_ATTEMPTS = 3
PROGRESS_WRITE_INTERVAL_SECONDS = 0.5
PARSED_SHARE_OF_PROGRESS = 0.1
"""Progress reported once parsing is done; embedding fills the rest."""

Scope = Literal["shared", "private"]
MediaKind = Literal["image", "speech"]
_MEDIA: dict[str, tuple[frozenset[str], Callable[[bytes], str]]] = {
    "image": (IMAGE_TYPES, ocr_image),
    "speech": (AUDIO_TYPES, transcribe),
}
HOUR = 3600


class JobQueue(Protocol):
    async def enqueue_job(self, function: str, *args: Any, _job_id: str | None = None) -> Any: ...


class TransientIngestError(Exception):
    """Ingestion failed for a reason that may pass (a store not answering): the job retries."""


class _Superseded(Exception):
    """The document no longer names the running job (queued again under another, or deleted): it stops."""


@dataclass(frozen=True, slots=True)
class DocumentView:
    """A document as the API shows it."""

    id: str
    title: str
    filename: str
    media_type: str
    scope: Scope
    status: str
    stage: str | None
    progress: float
    pages: int
    chunks: int
    error: str | None
    size_bytes: int
    owner_id: str
    created_at: datetime

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class OriginalFile:
    data: bytes
    media_type: str
    filename: str


def _new_job_id(document: SourceDocument) -> str:
    return f"ingest:{document.id}:{time.time_ns()}"


def view_of(document: SourceDocument) -> DocumentView:
    return DocumentView(
        id=str(document.id),
        title=document.title,
        filename=document.filename,
        media_type=document.media_type,
        scope=document.scope,
        status=document.status,
        stage=document.stage,
        progress=round(document.progress, 3),
        pages=document.pages,
        chunks=document.chunks,
        error=document.error,
        size_bytes=document.size_bytes,
        owner_id=document.owner_id,
        created_at=document.created_at,
    )


def _visible_to(viewer: Principal) -> dict[str, Any]:
    return {"$or": [{"scope": "shared"}, {"owner_id": viewer.id}]}


def _title_from(filename: str) -> str:
    stem = PurePath(filename).stem.replace("_", " ").replace("-", " ").strip()
    return stem[:200] or "Untitled document"


def _safe_filename(filename: str | None) -> str:
    name = PurePath((filename or "upload").replace("\\", "/")).name.strip()
    return (name or "upload")[:255]


class DocumentService:
    def __init__(
        self,
        *,
        retriever: Retriever | None,
        files: FileStore,
        queue: JobQueue,
        settings: Settings,
        redis: Redis | None = None,
        instances: InstanceHeartbeat | None = None,
    ) -> None:
        """``instances``: this process's heartbeat; documents it ingests carry its id, so a sweep elsewhere
        requeues them only once it has died (None: they carry none, and only the time rule applies)."""
        self._retriever = retriever
        self._files = files
        self._queue = queue
        self._settings = settings
        self._instances = instances
        self._heavy = HeavyWork(
            concurrency=settings.heavy_work_concurrency,
            limits=WorkerLimits(
                memory_bytes=settings.parse_memory_mb * 1024 * 1024,
                cpu_seconds=settings.parse_cpu_seconds,
                timeout_seconds=settings.parse_timeout_seconds,
            ),
            wait_seconds=settings.heavy_work_wait_seconds,
        )
        self._archive_limits = ArchiveLimits(
            max_extracted_bytes=settings.parse_max_extracted_mb * 1024 * 1024,
            max_ratio=settings.parse_max_compression_ratio,
            max_members=settings.parse_max_archive_members,
        )
        self._media_quotas = (
            {kind: Quota(redis, name=f"retrieval-{kind}", window_seconds=HOUR) for kind in _MEDIA} if redis else {}
        )

    def close(self) -> None:
        """Stop the parse workers."""
        self._heavy.close()

    @property
    def max_upload_mb(self) -> int:
        return self._settings.max_upload_mb

    @property
    def max_media_mb(self) -> int:
        return self._settings.max_media_mb

    @property
    def indexes_here(self) -> bool:
        """False in a CLI process that joined a running server: it queues documents to that server."""
        return self._retriever is not None

    @property
    def _indexer(self) -> Retriever:
        if self._retriever is None:
            raise DependencyUnavailable("The search index is held by the running medchat server.")
        return self._retriever

    # --- upload and queries ----------------------------------------------------------------------

    async def upload(
        self,
        *,
        owner: Principal,
        filename: str | None,
        data: bytes,
        scope: Scope,
        enqueue: bool = True,
        ip: str | None = None,
    ) -> DocumentView:
        """Store the file and its record (``queued``), then queue its ingestion (unless the caller runs it)."""
        if scope not in ("shared", "private"):
            raise ValidationFailed("scope: must be 'shared' or 'private'")
        if scope == "shared" and not owner.is_admin:
            raise Forbidden("Only administrators can add shared documents; upload it as private instead.")
        limit = self._settings.max_upload_mb * 1024 * 1024
        if len(data) > limit:
            raise PayloadTooLarge(
                f"The file is {len(data) / 1048576:.1f} MB; the limit is {self._settings.max_upload_mb} MB."
            )
        media_type = detect_media_type(data)
        safe_name = _safe_filename(filename)
        document = SourceDocument(
            id=ObjectId(),
            owner_id=owner.id,
            scope=scope,
            title=_title_from(safe_name),
            filename=safe_name,
            media_type=media_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key="",
        )
        document.storage_key = str(document.id)
        await self._files.save(document.storage_key, data)
        await document.insert()
        await audit.record(
            "create",
            actor_id=owner.id,
            resource_type="document",
            resource_id=str(document.id),
            ip=ip,
            scope=scope,
            media_type=media_type,
        )
        if enqueue:
            await self._enqueue(document)
        return view_of(document)

    async def retry(self, viewer: Principal, *, document_id: str) -> DocumentView:
        document = await self._manageable(viewer, document_id)
        if document.status != "failed":
            raise ValidationFailed("Only a failed document can be retried.")
        await self._requeue(document)
        return view_of(document)

    async def stale_documents(self, *, everything: bool = False) -> list[DocumentView]:
        """Ready documents indexed by another ``INDEX_VERSION`` (every ready one with ``everything``), oldest
        first: what ``medchat reindex`` redoes. A reindexed document drops out, so an interrupted run resumes."""
        criteria: dict[str, Any] = {"status": "ready"}
        if not everything:
            criteria["index_version"] = {"$ne": INDEX_VERSION}
        return [view_of(document) for document in await SourceDocument.find(criteria).sort("created_at").to_list()]

    async def queue_reindex(self, document_id: str) -> None:
        """Have the server that holds the index redo a document (its passages stay searchable meanwhile)."""
        document = await SourceDocument.get(ObjectId(document_id))
        if document is None:
            raise NotFound("No such document.")
        await self._requeue(document)

    async def _requeue(self, document: SourceDocument) -> None:
        await self._update(document, status="queued", stage=None, error=None, progress=0.0, attempts=0)
        await self._enqueue(document)

    async def _enqueue(self, document: SourceDocument, *, job_id: str | None = None) -> None:
        """Queue an ingestion job for ``document`` and record it as its current one (an older job still
        around for it then stops at its start: see ``ingest``)."""
        if job_id is None:
            job_id = _new_job_id(document)
            await self._update(document, job_id=job_id)
        try:
            await self._queue.enqueue_job(INGEST_JOB, str(document.id), _job_id=job_id)
        except Exception as error:
            log.warning("could not queue ingestion", document_id=str(document.id), error=str(error))
            await self._fail(document, "The ingestion queue did not answer. Retry in a moment.")
            raise DependencyUnavailable(
                "The ingestion queue is unavailable; the document was kept, retry it later."
            ) from error

    async def list_visible(
        self, viewer: Principal, *, limit: int = 50, cursor: str | None = None, status: str | None = None
    ) -> Page[DocumentView]:
        """Newest first; ``cursor`` is the ``next_cursor`` of the previous page."""
        criteria: dict[str, Any] = _visible_to(viewer)
        if status:
            criteria["status"] = status
        return (await paginate(SourceDocument, criteria, limit=limit, cursor=cursor)).map(view_of)

    async def get_visible(self, viewer: Principal, *, document_id: str) -> DocumentView:
        return view_of(await self._visible(viewer, document_id))

    async def original(self, viewer: Principal, *, document_id: str, ip: str | None = None) -> OriginalFile:
        document = await self._visible(viewer, document_id)
        await audit.record("read", actor_id=viewer.id, resource_type="document", resource_id=document_id, ip=ip)
        try:
            data = await self._files.read(document.storage_key)
        except FileNotFoundError:
            raise NotFound("The original file is no longer stored.") from None
        return OriginalFile(data=data, media_type=document.media_type, filename=document.filename)

    async def extract_text(self, viewer: Principal, data: bytes, *, kind: MediaKind, refused: str) -> str:
        """The text of an image (OCR) or a recording (speech), within the viewer's hourly budget for ``kind``
        (429 past it) and a free worker (503 ``busy`` after a short wait); ``refused`` explains a wrong type."""
        limit = self._settings.media_requests_per_hour_user
        if kind in self._media_quotas and limit > 0:
            budget = await self._media_quotas[kind].take(viewer.id, limit=limit)
            if not budget.allowed:
                raise RateLimited(
                    f"At most {limit} {'images' if kind == 'image' else 'recordings'} an hour can be read; "
                    "try again later.",
                    retry_after=budget.retry_after(),
                )
        accepted, extract = _MEDIA[kind]
        try:
            media_type = detect_media_type(data)
        except UnsupportedMediaType:
            media_type = None
        if media_type not in accepted:
            raise UnsupportedMediaType(refused)
        return (await self._heavy.run(extract, data, wait=False)).strip()

    async def delete(self, viewer: Principal, *, document_id: str, ip: str | None = None) -> None:
        """Remove the passages from the index first, then the file and the record."""
        document = await self._manageable(viewer, document_id)
        await self._indexer.delete_document(str(document.id))
        await self._files.delete(document.storage_key)
        await document.delete()
        await audit.record("delete", actor_id=viewer.id, resource_type="document", resource_id=document_id, ip=ip)

    async def _visible(self, viewer: Principal, document_id: str) -> SourceDocument:
        if not ObjectId.is_valid(document_id):
            raise NotFound("No such document.")
        document = await SourceDocument.find_one({"_id": ObjectId(document_id), **_visible_to(viewer)})
        if document is None:
            raise NotFound("No such document.")
        return document

    async def _manageable(self, viewer: Principal, document_id: str) -> SourceDocument:
        document = await self._visible(viewer, document_id)
        if document.owner_id != viewer.id and not (document.scope == "shared" and viewer.is_admin):
            raise Forbidden("Only the owner or an administrator can change this document.")
        return document

    # --- account lifecycle (subscribed to the auth module's events) ------------------------------

    async def delete_owner_data(self, *, user_id: str) -> int:
        documents = await SourceDocument.find({"owner_id": user_id}).to_list()
        await self._indexer.delete_owner(user_id)
        for document in documents:
            await self._files.delete(document.storage_key)
            await document.delete()
        return len(documents)

    async def export_owner_data(self, *, user_id: str) -> dict[str, Any]:
        documents = await SourceDocument.find({"owner_id": user_id}).to_list()
        shares = [asdict(view_of(document)) for document in documents]
        return {"documents": [{key: value for key, value in share.items() if key != "owner_id"} for share in shares]}

    # --- ingestion (the arq job's body) ----------------------------------------------------------

    async def ingest(self, document_id: str, *, job_id: str | None = None) -> None:
        """Parse, chunk, embed and index one document, moving its status along.

        A document that cannot be read fails with the reason; a store that does not answer raises
        ``TransientIngestError`` so the job is retried. Re-running replaces the document's passages.
        ``job_id`` is the queued job running this; a job the document no longer names (it was queued
        again meanwhile) does nothing, so one document is never ingested by two jobs at once.
        """
        document = await SourceDocument.get(ObjectId(document_id)) if ObjectId.is_valid(document_id) else None
        if document is None:
            log.info("ingest skipped: document deleted", document_id=document_id)
            return
        if not await self._claim(document, job_id=job_id):
            log.info("ingest skipped: a newer job replaced this one", document_id=document_id, job_id=job_id)
            return
        try:
            await self._ingest_claimed(document)
        except _Superseded:
            if await SourceDocument.get(document.id) is None:  # deleted while we were indexing
                await self._indexer.delete_document(document_id)
            log.info("ingest stopped: document queued again or deleted", document_id=document_id, job_id=job_id)

    async def _ingest_claimed(self, document: SourceDocument) -> None:
        """The body of ``ingest`` once this job holds ``document``; every write it makes is ``_write_as_job``."""
        document_id = str(document.id)
        started = time.perf_counter()
        try:
            parsed = await self._parse(document)
        except (UnreadableDocument, UnsupportedMediaType) as error:
            await self._fail(document, error.detail, as_job=True)
            return
        except Exception as error:  # any parser failure ends the document, never leaves it processing
            log.exception("parsing failed", document_id=document_id)
            await self._fail(document, f"The file could not be read ({type(error).__name__}).", as_job=True)
            return
        chunks = await asyncio.to_thread(
            chunk_document,
            parsed.pages,
            chunk_tokens=self._settings.chunk_tokens,
            overlap_tokens=self._settings.chunk_overlap_tokens,
        )
        if not chunks:
            await self._fail(document, "No text was found in this file (a scan with nothing legible?).", as_job=True)
            return
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
        except _Superseded:
            raise
        except Exception as error:
            if document.attempts >= MAX_INGEST_ATTEMPTS:
                await self._fail(document, "The search index did not answer; retry the document later.", as_job=True)
                return
            raise TransientIngestError(str(error)) from error
        if await SourceDocument.get(document.id) is None:  # deleted while we were indexing
            await self._indexer.delete_document(document_id)
            return
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

    async def _claim(self, document: SourceDocument, *, job_id: str | None) -> bool:
        """Mark the document ``processing`` by this instance, unless ``job_id`` is no longer its job.

        One conditional write: a sweep requeueing the document at the same moment changes its job first
        (then this job stops) or finds it owned by a live instance (then the sweep leaves it)."""
        condition: dict[str, Any] = {"_id": document.id}
        if job_id is not None and document.job_id is not None:
            if document.job_id != job_id:
                return False
            condition["job_id"] = job_id
        fields: dict[str, Any] = {
            "status": "processing",
            "stage": "parsing",
            "progress": 0.02,
            "error": None,
            "attempts": document.attempts + 1,
            "ingesting_instance": self._instances.id if self._instances is not None else None,
            "updated_at": utcnow(),
        }
        claimed = await SourceDocument.get_pymongo_collection().update_one(condition, {"$set": fields})
        if claimed.matched_count == 0:
            return False
        for name, value in fields.items():
            setattr(document, name, value)
        return True

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
            fields["job_id"] = _new_job_id(document)
        fields["updated_at"] = utcnow()
        taken = await SourceDocument.get_pymongo_collection().update_one(condition, {"$set": fields})
        if taken.matched_count == 0:  # another sweep, or the owner itself, got there first
            return False
        for name, value in fields.items():
            setattr(document, name, value)
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
        still names that job, else ``_Superseded`` (a sweep took the job's process for dead and queued it
        again, or it was deleted), so a late write of the old job never overwrites the newer job's state."""
        if document.job_id is None:  # queued before jobs were recorded, or ingested directly by the CLI
            await DocumentService._update(document, **fields)
            return
        fields["updated_at"] = utcnow()
        written = await SourceDocument.get_pymongo_collection().update_one(
            {"_id": document.id, "job_id": document.job_id}, {"$set": fields}
        )
        if written.matched_count == 0:
            raise _Superseded
        for name, value in fields.items():
            setattr(document, name, value)

    @staticmethod
    async def _update(document: SourceDocument, **fields: Any) -> None:
        """``$set`` the fields on the stored record (never re-creating one deleted meanwhile) and on ``document``."""
        fields["updated_at"] = utcnow()
        for name, value in fields.items():
            setattr(document, name, value)
        await SourceDocument.find_one({"_id": document.id}).update({"$set": fields})

"""The knowledge base: upload, list, delete and ingest documents (no HTTP here; ingestion in ``ingestion``).

Visibility is one rule everywhere: a user sees shared documents and their own private ones. Admins
add and remove shared documents; they do not see other users' private documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any, BinaryIO, Literal, Protocol

import structlog
from bson import ObjectId
from redis.asyncio import Redis

from medchat.platform import audit
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
from medchat.platform.job_context import current_trace_context
from medchat.platform.pagination import Page, paginate
from medchat.platform.quota import Quota
from medchat.retrieval.batch_ingestion import BatchIngestion
from medchat.retrieval.ingestion import new_job_id
from medchat.retrieval.models import FINAL_STATUSES, SourceDocument
from medchat.retrieval.originals import OriginalStore
from medchat.retrieval.originals.incoming import Incoming
from medchat.retrieval.parsing import (
    ArchiveLimits,
    HeavyWork,
    WorkerLimits,
    detect_media_type,
    ocr_image,
    transcribe,
)
from medchat.retrieval.parsing.detection import AUDIO_TYPES, IMAGE_TYPES
from medchat.retrieval.search import INDEX_VERSION, Retriever
from medchat.settings import Settings

log = structlog.get_logger(__name__)

INGEST_JOB = "ingest_document"

Scope = Literal["shared", "private"]
MediaKind = Literal["image", "speech"]
_MEDIA: dict[str, tuple[frozenset[str], Callable[[bytes], str]]] = {
    "image": (IMAGE_TYPES, ocr_image),
    "speech": (AUDIO_TYPES, transcribe),
}
HOUR = 3600


class JobQueue(Protocol):
    async def enqueue_job(self, function: str, *args: Any, _job_id: str | None = None, **kwargs: Any) -> Any: ...


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
    """A stored original, read as a stream (whole or a byte range) only when its response is sent."""

    media_type: str
    filename: str
    length: int
    key: str
    store: OriginalStore

    def stream(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (to the last byte when None)."""
        return self.store.stream(self.key, start, end)


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


class DocumentService(BatchIngestion):
    """Uploads, queries and deletion here; the ingestion job's body in ``Ingestion`` (small documents in
    batches: ``BatchIngestion``)."""

    def __init__(
        self,
        *,
        retriever: Retriever | None,
        files: OriginalStore,
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
        data: bytes | BinaryIO,
        scope: Scope,
        enqueue: bool = True,
        ip: str | None = None,
    ) -> DocumentView:
        """Store the file and its record (``queued``), then queue its ingestion (unless the caller runs it).

        ``data`` may be a seekable file (an upload spooled to disk): it is streamed into the store in chunks."""
        if scope not in ("shared", "private"):
            raise ValidationFailed("scope: must be 'shared' or 'private'")
        if scope == "shared" and not owner.is_admin:
            raise Forbidden("Only administrators can add shared documents; upload it as private instead.")
        incoming = Incoming.of(data)
        size = await incoming.size()
        if size > self._settings.max_upload_mb * 1024 * 1024:
            raise PayloadTooLarge(
                f"The file is {size / 1048576:.1f} MB; the limit is {self._settings.max_upload_mb} MB."
            )
        media_type = await incoming.media_type()
        safe_name = _safe_filename(filename)
        document = SourceDocument(
            id=ObjectId(),
            owner_id=owner.id,
            scope=scope,
            title=_title_from(safe_name),
            filename=safe_name,
            media_type=media_type,
            size_bytes=size,
            sha256="",
            storage_key="",
        )
        document.storage_key = str(document.id)
        digest = hashlib.sha256()
        await self._files.save(document.storage_key, incoming.chunks(digest), filename=safe_name)
        document.sha256 = digest.hexdigest()
        try:
            await document.insert()
        except BaseException:
            await self._files.delete(document.storage_key)
            raise
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
            job_id = new_job_id(document)
            await self._update(document, job_id=job_id)
        # The job's spans continue the trace queueing it (an upload's request); a sweep's requeue has none.
        trace_context = current_trace_context() or None
        try:
            await self._queue.enqueue_job(INGEST_JOB, str(document.id), _job_id=job_id, trace_context=trace_context)
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

    async def views(self, document_ids: list[str]) -> list[DocumentView]:
        """These documents as they are now, in one query (``medchat ingest`` following its files); a deleted
        one is missing. Not filtered by viewer: for the CLI, which acts as the system."""
        ids = [ObjectId(document_id) for document_id in document_ids if ObjectId.is_valid(document_id)]
        return [view_of(document) for document in await SourceDocument.find({"_id": {"$in": ids}}).to_list()]

    async def original(self, viewer: Principal, *, document_id: str, ip: str | None = None) -> OriginalFile:
        document = await self._visible(viewer, document_id)
        await audit.record("read", actor_id=viewer.id, resource_type="document", resource_id=document_id, ip=ip)
        try:
            length = await self._files.length(document.storage_key)
        except FileNotFoundError:
            raise NotFound("The original file is no longer stored.") from None
        return OriginalFile(
            media_type=document.media_type,
            filename=document.filename,
            length=length,
            key=document.storage_key,
            store=self._files,
        )

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

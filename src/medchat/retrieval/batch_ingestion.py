"""Ingestion of many small documents in batches: their chunks go through the embedding model together and
into the index in one upsert, so per-document overhead (a job, a model run of two texts, store calls, an
index optimisation after each write) no longer costs more than the embedding itself.

How uploads coalesce, without a debounce: every upload still queues one ``ingest_document`` job. The job of
a small document (``SMALL_DOCUMENT_BYTES``) takes up to ``BATCH_DOCUMENTS - 1`` other small documents still
``queued`` into its batch, claiming them in one conditional write that makes it the job they name (as a
requeue does). Their own jobs, when they start, find their document named by another document's job and
end without doing anything (not counted: the batch counts each document it ingests). So while one batch
embeds, the uploads behind it gather, and the next job to start takes them all. A large document is
ingested alone by ``Ingestion.ingest``, with its progress.

Per document, exactly as alone: a document no longer naming the job (queued again, deleted) is skipped or
left to its newer job; one that cannot be read fails alone, its batch-mates go on; one deleted while the
batch was indexed has its points removed. The batch's state changes are one write each (claim, the
``embedding`` stage, ``ready``), each conditional per document on it still naming the job. When the index
does not answer, the job is retried and takes back the documents still naming it; one that has used its
attempts fails.

A batch is the span ``retrieval.ingest`` (``document.id`` the job's own document, ``retrieval.documents``
how many; children ``retrieval.parse`` and ``retrieval.chunk`` per document and one ``retrieval.index``),
and each document is counted and timed by outcome in ``INGESTION_JOBS`` and ``INGESTION_DURATION``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from bson import ObjectId
from pymongo import UpdateOne

from medchat.platform.clock import utcnow
from medchat.platform.spans import TRACER
from medchat.retrieval.batch_index import DocumentChunks, index_documents
from medchat.retrieval.chunking import Chunk
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.ingestion import (
    MAX_INGEST_ATTEMPTS,
    PARSED_SHARE_OF_PROGRESS,
    Ingestion,
    Outcome,
    Superseded,
    TransientIngestError,
    claimed_fields,
    count_outcome,
    stored_document,
)
from medchat.retrieval.models import SourceDocument
from medchat.retrieval.search import INDEX_VERSION, DocumentInfo

log = structlog.get_logger(__name__)

SMALL_DOCUMENT_BYTES = 32 * 1024
"""At most a few dozen passages: ingested in a batch. A larger file is ingested alone, with its progress."""
BATCH_DOCUMENTS = 32
"""Documents per batch: at one or two passages each, a few of the embedding model's batches."""
UNINDEXABLE = "The search index did not answer; retry the document later."


@dataclass(slots=True)
class _Prepared:
    """A claimed document, parsed and chunked, waiting for the batch's embedding."""

    document: SourceDocument
    title: str
    pages: int
    chunks: list[Chunk]


class BatchIngestion(Ingestion):
    """The batched half of ingestion; ``DocumentService`` provides the stores (see ``Ingestion``)."""

    @staticmethod
    def is_small(size_bytes: int) -> bool:
        """Whether a document of this size is ingested in a batch (``ingest_documents``)."""
        return size_bytes <= SMALL_DOCUMENT_BYTES

    @property
    def _instance_id(self) -> str | None:
        return self._instances.id if self._instances is not None else None

    async def ingest_queued(self, document_id: str, *, job_id: str | None) -> None:
        """The ``ingest_document`` job: a small document in a batch with the small ones waiting behind it,
        anything else as before (``ingest``)."""
        document = await stored_document(document_id)
        if job_id is None or (
            document is not None and (document.job_id is None or not self.is_small(document.size_bytes))
        ):
            await self.ingest(document_id, job_id=job_id)
            return
        if document is not None and document.job_id != job_id and not _names_its_own_job(document):
            log.info("ingest skipped: taken into another job's batch", document_id=document_id, job_id=job_id)
            return
        if document is None or document.job_id != job_id:
            log.info("ingest of its own document superseded", document_id=document_id, job_id=job_id)
            count_outcome("superseded", 0.0)  # the job's own document; documents it still holds are taken back below
        mates = await _waiting_small_documents(exclude=document_id, limit=BATCH_DOCUMENTS - 1)
        claimed = await self._claim_batch(job_id, mates)
        if claimed:
            await self._run_batch(claimed, job_id=job_id, lead_id=document_id)

    async def ingest_documents(self, document_ids: Sequence[str]) -> None:
        """Ingest these small documents as one batch in this process (``medchat ingest``); no job holds them."""
        ids = [ObjectId(document_id) for document_id in document_ids]
        await SourceDocument.get_pymongo_collection().update_many(
            {"_id": {"$in": ids}}, _claim_update(self._instance_id)
        )
        claimed = await SourceDocument.find({"_id": {"$in": ids}}).to_list()
        if claimed:
            await self._run_batch(claimed, job_id=None, lead_id=document_ids[0])

    async def _claim_batch(self, job_id: str, mates: Sequence[SourceDocument]) -> list[SourceDocument]:
        """One write claims the documents naming this job (its own, and those it took before a retry) and the
        waiting ``mates`` that nobody changed meanwhile; the claimed ones, read back."""
        still_waiting = [{"_id": mate.id, "job_id": mate.job_id, "status": "queued"} for mate in mates]
        condition = {"$or": [{"job_id": job_id, "status": {"$in": ["queued", "processing"]}}, *still_waiting]}
        update = _claim_update(self._instance_id)
        update["$set"]["job_id"] = job_id
        await SourceDocument.get_pymongo_collection().update_many(condition, update)
        return await SourceDocument.find({"job_id": job_id, "status": "processing"}).to_list()

    async def _run_batch(self, claimed: list[SourceDocument], *, job_id: str | None, lead_id: str) -> None:
        started = time.perf_counter()
        outcomes: dict[str, Outcome] = {}
        attributes = {"document.id": lead_id, "retrieval.documents": len(claimed)}
        with TRACER.start_as_current_span("retrieval.ingest", attributes=attributes) as span:
            try:
                await self._ingest_claimed_batch(claimed, outcomes, job_id=job_id)
            finally:
                seconds = time.perf_counter() - started
                for outcome in outcomes.values():
                    count_outcome(outcome, seconds)
                if lead_id in outcomes:
                    span.set_attribute("retrieval.ingest.outcome", outcomes[lead_id])
        ready = sum(outcome == "ready" for outcome in outcomes.values())
        log.info("documents ingested", documents=len(claimed), ready=ready, seconds=round(seconds, 2))

    async def _ingest_claimed_batch(
        self, claimed: list[SourceDocument], outcomes: dict[str, Outcome], *, job_id: str | None
    ) -> None:
        """Parse and chunk each document, embed and index them together, mark them ready; ``outcomes`` gets
        each document's as it is known (cancelled midway, the rest have none: a sweep requeues them)."""
        parsed = await asyncio.gather(*(self._prepare(document, outcomes) for document in claimed))
        prepared = [item for item in parsed if item is not None]
        if not prepared:
            return
        await _set_many(prepared, job_id, {"stage": "embedding", "progress": PARSED_SHARE_OF_PROGRESS})
        batch = [
            DocumentChunks(
                document=DocumentInfo(
                    document_id=str(item.document.id),
                    owner_id=item.document.owner_id,
                    scope=item.document.scope,
                    title=item.title,
                ),
                chunks=item.chunks,
                may_hold_more_points=_may_hold_points(item.document),
            )
            for item in prepared
        ]
        try:
            await index_documents(self._indexer, batch)
        except Exception as error:  # noqa: BLE001 - a store failure: the documents are retried or fail
            await self._index_failed(prepared, outcomes, error, retry=job_id is not None)
            return
        held = await self._still_held(prepared, outcomes, job_id=job_id)
        await self._mark_ready(held, outcomes, job_id=job_id)

    async def _prepare(self, document: SourceDocument, outcomes: dict[str, Outcome]) -> _Prepared | None:
        """Parse and chunk one document; None when it failed (recorded) or no longer names the job."""
        document_id = str(document.id)
        try:
            try:
                parsed, chunks = await self._read_passages(document)
            except UnreadableDocument as error:
                return await self._fail_in_batch(document, error.detail, outcomes)
        except Superseded:
            outcomes[document_id] = "superseded"
            return None
        return _Prepared(document, (parsed.title or document.title)[:200], len(parsed.pages), chunks)

    async def _fail_in_batch(self, document: SourceDocument, reason: str, outcomes: dict[str, Outcome]) -> None:
        await self._fail(document, reason, as_job=True)  # Superseded when it no longer names the job
        outcomes[str(document.id)] = "failed"

    async def _index_failed(
        self, prepared: list[_Prepared], outcomes: dict[str, Outcome], error: Exception, *, retry: bool
    ) -> None:
        """The index did not answer: the documents fail when out of attempts (or with no job to retry them);
        the rest are retried with the job (the error raised)."""
        retried = []
        for item in prepared:
            document_id = str(item.document.id)
            if item.document.attempts >= MAX_INGEST_ATTEMPTS or not retry:
                try:
                    await self._fail_in_batch(item.document, UNINDEXABLE, outcomes)
                except Superseded:
                    outcomes[document_id] = "superseded"
            else:
                outcomes[document_id] = "retried"
                retried.append(document_id)
        log.warning("indexing a batch failed", documents=len(prepared), retried=len(retried), error=str(error))
        if retried:
            raise TransientIngestError(str(error)) from error

    async def _still_held(
        self, prepared: list[_Prepared], outcomes: dict[str, Outcome], *, job_id: str | None
    ) -> list[_Prepared]:
        """The documents still naming the job; the points of those deleted meanwhile are removed."""
        ids = [item.document.id for item in prepared]
        cursor = SourceDocument.get_pymongo_collection().find({"_id": {"$in": ids}}, {"job_id": 1})
        naming = {found["_id"]: found.get("job_id") for found in await cursor.to_list()}
        held = []
        for item in prepared:
            document_id = str(item.document.id)
            if item.document.id not in naming:
                await self._indexer.delete_document(document_id)
                outcomes[document_id] = "superseded"
            elif job_id is not None and naming[item.document.id] != job_id:
                outcomes[document_id] = "superseded"  # queued again: its newer job indexes it again
            else:
                held.append(item)
        return held

    async def _mark_ready(self, held: list[_Prepared], outcomes: dict[str, Outcome], *, job_id: str | None) -> None:
        """One write marks every held document ready; one that changed meanwhile is not (its outcome tells)."""
        if not held:
            return
        now = utcnow()
        writes = [
            UpdateOne(
                _naming(job_id, {"_id": item.document.id}),
                {"$set": _ready_fields(item) | {"updated_at": now}},
            )
            for item in held
        ]
        result = await SourceDocument.get_pymongo_collection().bulk_write(writes, ordered=False)
        if result.matched_count == len(held):
            for item in held:
                outcomes[str(item.document.id)] = "ready"
            return
        ready = (
            await SourceDocument.get_pymongo_collection()
            .find({"_id": {"$in": [item.document.id for item in held]}, "status": "ready"}, {"_id": 1})
            .to_list()
        )
        ready_ids = {found["_id"] for found in ready}
        for item in held:
            outcomes[str(item.document.id)] = "ready" if item.document.id in ready_ids else "superseded"
        await self._still_held(held, outcomes, job_id=job_id)  # removes the points of any deleted meanwhile


def _may_hold_points(document: SourceDocument) -> bool:
    """Indexed before (a reindex), or tried before (a retry, a crash): points past its new chunk count may
    exist. A first try's chunking matches any points an earlier failed try left, so those are overwritten."""
    return document.attempts > 1 or document.chunks > 0 or bool(document.index_version)


def _ready_fields(item: _Prepared) -> dict[str, Any]:
    return {
        "status": "ready",
        "stage": None,
        "progress": 1.0,
        "title": item.title,
        "pages": item.pages,
        "chunks": len(item.chunks),
        "index_version": INDEX_VERSION,
        "ingesting_instance": None,
    }


def _claim_update(instance_id: str | None) -> dict[str, Any]:
    """What ``Ingestion._claim`` writes, for many documents at once (each one's attempts counted up)."""
    return {"$set": claimed_fields(instance_id) | {"updated_at": utcnow()}, "$inc": {"attempts": 1}}


async def _set_many(prepared: list[_Prepared], job_id: str | None, fields: dict[str, Any]) -> None:
    """``$set`` the same fields on every prepared document still naming the job (one write)."""
    condition = _naming(job_id, {"_id": {"$in": [item.document.id for item in prepared]}})
    await SourceDocument.get_pymongo_collection().update_many(condition, {"$set": fields | {"updated_at": utcnow()}})


def _naming(job_id: str | None, condition: dict[str, Any]) -> dict[str, Any]:
    return condition if job_id is None else condition | {"job_id": job_id}


async def _waiting_small_documents(*, exclude: str, limit: int) -> list[SourceDocument]:
    """The oldest small documents still waiting for their job."""
    criteria: dict[str, Any] = {
        "status": "queued",
        "size_bytes": {"$lte": SMALL_DOCUMENT_BYTES},
        "job_id": {"$ne": None},
        "_id": {"$ne": ObjectId(exclude)} if ObjectId.is_valid(exclude) else {"$exists": True},
    }
    return await SourceDocument.find(criteria).sort("created_at").limit(limit).to_list()


def _names_its_own_job(document: SourceDocument) -> bool:
    """Jobs are named after their document (``new_job_id``): another document's job name means a batch took it."""
    return document.job_id is not None and document.job_id.startswith(f"ingest:{document.id}:")

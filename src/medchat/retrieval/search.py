"""The retrieval service: index chunks of a document, and search what a user may see.

Ranking and relevance are separate. Hits are ordered by the store's ranking (hybrid: dense and
lexical candidates fused by DBSF, dense weighted 3:1, see ``HybridParams``), but whether a hit counts
as found is decided by the cosine similarity of the query and passage embeddings (``Hit.dense_score``):
fused scores are normalised per query, so they carry no absolute meaning and cannot be thresholded.
``Passage.score`` is that cosine; at the default 0.3, every MedQuAD question still finds passages
and 1 of 16 off-topic questions does (bench/retrieval_eval.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medchat.retrieval.chunking import Chunk
from medchat.retrieval.embeddings import Embedder, default_embedder
from medchat.retrieval.passages import distinct_texts, snippet
from medchat.retrieval.scope import SearchScope, Visibility
from medchat.retrieval.sparse import SparseVector, document_vector, query_vector
from medchat.retrieval.vectorstore import HybridParams, PassagePoint, PassageRecord, SearchMode, VectorStore
from medchat.settings import Settings

DEFAULT_HYBRID = HybridParams()
INDEX_BATCH_SIZE = 64
CANDIDATES_PER_RESULT = 3
"""Hits fetched per requested result, to leave enough after thresholding and de-duplication."""

ProgressCallback = Callable[[int, int], Awaitable[None]]
"""Called as ``await on_progress(chunks_done, chunks_total)`` after each stored batch."""


@dataclass(frozen=True, slots=True)
class Passage:
    document_id: str
    title: str
    page: int
    section: str
    text: str
    snippet: str
    score: float
    """Cosine similarity of query and passage, 0..1 in practice (see the module docstring)."""
    chunk_id: str


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    document_id: str
    owner_id: str
    scope: Visibility
    title: str


@dataclass(frozen=True, slots=True)
class IndexResult:
    document_id: str
    chunks: int
    seconds: float


def embedding_text(chunk: Chunk) -> str:
    """What is embedded and matched lexically: the heading path gives a chunk its context."""
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        *,
        embedder: Embedder | None = None,
        top_k: int = 6,
        score_threshold: float = 0.3,
        hybrid: HybridParams = DEFAULT_HYBRID,
        index_batch_size: int = INDEX_BATCH_SIZE,
    ) -> None:
        self._store = store
        self._embedder = embedder or default_embedder()
        self._top_k = top_k
        self._score_threshold = score_threshold
        self._hybrid = hybrid
        self._index_batch_size = index_batch_size

    @classmethod
    def from_settings(cls, settings: Settings, *, store: VectorStore, embedder: Embedder | None = None) -> Retriever:
        return cls(
            store,
            embedder=embedder,
            top_k=settings.search_top_k,
            score_threshold=settings.search_score_threshold,
        )

    @property
    def store(self) -> VectorStore:
        return self._store

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    async def search(
        self,
        query: str,
        *,
        scope: SearchScope,
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
        score_threshold: float | None = None,
    ) -> list[Passage]:
        """The best passages ``scope`` may see, best first; empty when nothing reaches the threshold."""
        query = query.strip()
        if not query:
            return []
        limit = top_k or self._top_k
        threshold = self._score_threshold if score_threshold is None else score_threshold
        dense = (await self._embedder.embed_async([query]))[0]
        hits = await self._store.search(
            dense,
            query_vector(query),
            scope=scope,
            limit=limit * CANDIDATES_PER_RESULT,
            mode=mode,
            hybrid=self._hybrid,
        )
        relevant = [hit for hit in hits if hit.dense_score >= threshold]
        kept = distinct_texts((hit.record.text for hit in relevant), limit=limit)
        return [
            Passage(
                document_id=hit.record.document_id,
                title=hit.record.title,
                page=hit.record.page,
                section=hit.record.section,
                text=hit.record.text,
                snippet=snippet(hit.record.text, query),
                score=round(hit.dense_score, 4),
                chunk_id=hit.id,
            )
            for hit in (relevant[index] for index in kept)
        ]

    async def index_chunks(
        self,
        document: DocumentInfo,
        chunks: Sequence[Chunk],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> IndexResult:
        """Embed and store the chunks (numbered 0..n-1, as ``chunk_document`` makes them), replacing
        whatever the document had before.

        Embedding the next batch overlaps with storing the previous one. Points are keyed by
        (document, chunk index), so a re-run overwrites; chunks beyond the new count are deleted.
        """
        if any(chunk.index != position for position, chunk in enumerate(chunks)):
            raise ValueError("chunks must be numbered 0..n-1 in order")
        started = time.perf_counter()
        pending: asyncio.Task[None] | None = None
        try:
            for start in range(0, len(chunks), self._index_batch_size):
                points = await self._points(document, chunks[start : start + self._index_batch_size])
                if pending is not None:
                    await pending
                    if on_progress is not None:
                        await on_progress(start, len(chunks))
                pending = asyncio.create_task(self._store.upsert(points))
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
        await self._store.delete_document(document.document_id, from_chunk_index=len(chunks))
        if on_progress is not None:
            await on_progress(len(chunks), len(chunks))
        return IndexResult(document.document_id, len(chunks), time.perf_counter() - started)

    async def _points(self, document: DocumentInfo, chunks: Sequence[Chunk]) -> list[PassagePoint]:
        texts = [embedding_text(chunk) for chunk in chunks]
        dense, sparse = await asyncio.gather(
            self._embedder.embed_async(texts, bulk=True),
            asyncio.to_thread(_document_vectors, texts),
        )
        return [
            _point(document, chunk, vector, lexical)
            for chunk, vector, lexical in zip(chunks, dense, sparse, strict=True)
        ]

    async def delete_document(self, document_id: str) -> None:
        await self._store.delete_document(document_id)

    async def delete_owner(self, owner_id: str) -> None:
        """Forget every passage a user owns (e.g. when the account is deleted)."""
        await self._store.delete_owner(owner_id)


def _document_vectors(texts: list[str]) -> list[SparseVector]:
    return [document_vector(text) for text in texts]


def _point(document: DocumentInfo, chunk: Chunk, dense: np.ndarray, sparse: SparseVector) -> PassagePoint:
    record = PassageRecord(
        document_id=document.document_id,
        owner_id=document.owner_id,
        scope=document.scope,
        title=document.title,
        page=chunk.page,
        section=chunk.section,
        text=chunk.text,
        chunk_index=chunk.index,
    )
    return PassagePoint(record=record, dense=dense, sparse=sparse)

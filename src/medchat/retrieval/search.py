"""The retrieval service: index chunks of a document, and search what a user may see.

Ranking and relevance are separate. Hits are ordered by the store's ranking (hybrid: dense and
lexical candidates fused by DBSF, dense weighted 3:1, see ``HybridParams``), but whether a hit counts
as found is decided by two absolute signals (``ranking.judge``): the cosine similarity of the query and
passage embeddings (``Hit.dense_score``; fused scores are normalised per query, so they cannot be
thresholded), or an exact match on every query word the embedding model does not know. ``Passage.score``
is that cosine. Results are diverse across documents, with adjacent chunks merged (``ranking``).
Every chunk is embedded and indexed with its document's title and heading path, so a chunk far from
a document's start keeps its topic.

A search is the span ``retrieval.search`` (children ``retrieval.embed_query``, ``retrieval.vector_search``)
and is timed per stage in ``RETRIEVAL_DURATION``; indexing is ``retrieval.index`` and counts its chunks
in ``INGESTION_CHUNKS`` as each batch is stored. Span attributes hold counts and the collection, never text.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medchat.platform.metrics import INGESTION_CHUNKS, RETRIEVAL_DURATION, RETRIEVAL_HITS
from medchat.platform.spans import TRACER
from medchat.retrieval.chunking import Chunk
from medchat.retrieval.embeddings import Embedder, default_embedder
from medchat.retrieval.passages import snippet
from medchat.retrieval.ranking import Candidate, Span, assess, diverse_spans, judge, unknown_terms
from medchat.retrieval.scope import SearchScope, Visibility
from medchat.retrieval.sparse import SparseVector, document_vector, query_vector
from medchat.retrieval.vectorstore import HybridParams, PassagePoint, PassageRecord, SearchMode, VectorStore
from medchat.settings import Settings

DEFAULT_HYBRID = HybridParams()
INDEX_BATCH_SIZE = 64
CANDIDATES_PER_RESULT = 4
"""Hits fetched per requested result, to leave enough after thresholding, de-duplication and the
per-document cap."""
CHUNKS_PER_DOCUMENT = 2
INDEX_VERSION = "all-MiniLM-L6-v2-int8:title-and-headings"
"""What a passage's vectors were made from: the embedding model and ``embedding_text``. Changing either
changes this, and ``medchat reindex`` redoes the documents indexed with another version."""

_EMBEDDING_SECONDS = RETRIEVAL_DURATION.labels(stage="embedding")
_VECTOR_SEARCH_SECONDS = RETRIEVAL_DURATION.labels(stage="vector_search")
_TOTAL_SECONDS = RETRIEVAL_DURATION.labels(stage="total")

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


def embedding_text(chunk: Chunk, title: str = "") -> str:
    """What is embedded and matched lexically: the title and heading path give a chunk its context
    (the title is left out when the heading path already starts with it)."""
    context = [part for part in (title.strip() if _names_something(title) else "", chunk.section) if part]
    if len(context) == 2 and chunk.section.casefold().startswith(context[0].casefold()):
        context = [chunk.section]
    return "\n".join([" > ".join(context), chunk.text]) if context else chunk.text


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        *,
        embedder: Embedder | None = None,
        top_k: int = 6,
        score_threshold: float = 0.3,
        chunks_per_document: int = CHUNKS_PER_DOCUMENT,
        hybrid: HybridParams = DEFAULT_HYBRID,
        index_batch_size: int = INDEX_BATCH_SIZE,
    ) -> None:
        self._store = store
        self._embedder = embedder or default_embedder()
        self._top_k = top_k
        self._score_threshold = score_threshold
        self._chunks_per_document = chunks_per_document
        self._hybrid = hybrid
        self._index_batch_size = index_batch_size

    @classmethod
    def from_settings(cls, settings: Settings, *, store: VectorStore, embedder: Embedder | None = None) -> Retriever:
        return cls(
            store,
            embedder=embedder,
            top_k=settings.search_top_k,
            score_threshold=settings.search_score_threshold,
            chunks_per_document=settings.search_chunks_per_document,
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
        """The best passages ``scope`` may see, best first; empty when no hit is relevant (module docstring)."""
        query = query.strip()
        if not query:
            return []
        limit = top_k or self._top_k
        threshold = self._score_threshold if score_threshold is None else score_threshold
        started = time.perf_counter()
        attributes = {"retrieval.k": limit, "retrieval.mode": mode, "retrieval.collection": self._store.collection}
        with TRACER.start_as_current_span("retrieval.search", attributes=attributes) as search_span:
            dense = await self._embed_query(query)
            candidates = await self._candidates(query, dense, scope=scope, limit=limit, mode=mode)
            found = diverse_spans(
                judge(candidates, threshold=threshold), limit=limit, per_document=self._chunks_per_document
            )
            search_span.set_attribute("retrieval.hits", len(found))
        RETRIEVAL_HITS.observe(len(found))
        _TOTAL_SECONDS.observe(time.perf_counter() - started)
        return [_passage(span, query) for span in found]

    async def _embed_query(self, query: str) -> np.ndarray:
        started = time.perf_counter()
        with TRACER.start_as_current_span("retrieval.embed_query"):
            dense = await self._embedder.embed_query(query)
        _EMBEDDING_SECONDS.observe(time.perf_counter() - started)
        return dense

    async def _candidates(
        self, query: str, dense: np.ndarray, *, scope: SearchScope, limit: int, mode: SearchMode
    ) -> list[Candidate]:
        """The store's hits for the query, judged for relevance (one store query, two for an unknown term)."""
        started = time.perf_counter()
        attributes = {"retrieval.k": limit * CANDIDATES_PER_RESULT, "retrieval.collection": self._store.collection}
        with TRACER.start_as_current_span("retrieval.vector_search", attributes=attributes) as search_span:
            lexical = query_vector(query)
            limit_hits = limit * CANDIDATES_PER_RESULT
            hits = await self._store.search(
                dense, lexical, scope=scope, limit=limit_hits, mode=mode, hybrid=self._hybrid
            )
            required = unknown_terms(query)
            candidates = assess(hits, required)
            if mode == "hybrid" and required and not any(candidate.lexical_match for candidate in candidates):
                # Fusion can rank a passage holding a term the model does not know below the cut when its
                # cosine is low; the best lexical hits join the candidates so ``judge`` can see them.
                seen = {hit.id for hit in hits}
                extra = await self._store.search(dense, lexical, scope=scope, limit=limit, mode="sparse")
                candidates += assess([hit for hit in extra if hit.id not in seen], required)
            search_span.set_attribute("retrieval.candidates", len(candidates))
        _VECTOR_SEARCH_SECONDS.observe(time.perf_counter() - started)
        return candidates

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
        attributes = {"retrieval.chunks": len(chunks), "retrieval.collection": self._store.collection}
        pending: asyncio.Task[None] | None = None
        with TRACER.start_as_current_span("retrieval.index", attributes=attributes):
            try:
                for start in range(0, len(chunks), self._index_batch_size):
                    points = await self._points(document, chunks[start : start + self._index_batch_size])
                    if pending is not None:
                        await pending
                        if on_progress is not None:
                            await on_progress(start, len(chunks))
                    pending = asyncio.create_task(self._store_batch(points))
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
        texts = [embedding_text(chunk, document.title) for chunk in chunks]
        with TRACER.start_as_current_span("retrieval.embed", attributes={"retrieval.chunks": len(chunks)}):
            dense, sparse = await asyncio.gather(
                self._embedder.embed_async(texts, bulk=True),
                asyncio.to_thread(document_vectors, texts),
            )
        return [
            passage_point(document, chunk, vector, lexical)
            for chunk, vector, lexical in zip(chunks, dense, sparse, strict=True)
        ]

    async def _store_batch(self, points: Sequence[PassagePoint]) -> None:
        """Upsert one embedded batch; counted as indexed once the store has it (the rate is chunks per second)."""
        await self._store.upsert(points)
        INGESTION_CHUNKS.inc(len(points))

    async def delete_document(self, document_id: str) -> None:
        await self._store.delete_document(document_id)

    async def delete_owner(self, owner_id: str) -> None:
        """Forget every passage a user owns (e.g. when the account is deleted)."""
        await self._store.delete_owner(owner_id)


def _names_something(title: str) -> bool:
    """A title of numbers and codes only ("12345678", "IMG_0042") tells the model nothing about the text."""
    return any(len(word) >= 3 and word.isalpha() for word in re.split(r"[\W_]+", title))


def _passage(span: Span, query: str) -> Passage:
    best = span.best
    first = span.hits[0].record
    return Passage(
        document_id=first.document_id,
        title=first.title,
        page=first.page,
        section=first.section,
        text=span.text,
        snippet=snippet(span.text, query),
        score=round(max(hit.dense_score for hit in span.hits), 4),
        chunk_id=best.id,
    )


def document_vectors(texts: list[str]) -> list[SparseVector]:
    return [document_vector(text) for text in texts]


def passage_point(document: DocumentInfo, chunk: Chunk, dense: np.ndarray, sparse: SparseVector) -> PassagePoint:
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

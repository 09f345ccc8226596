"""Embed and store the chunks of several documents together: one pass of the embedding model over all
their texts (it sorts them by length and runs them in its own batches), one upsert.

What ``Retriever.index_chunks`` does for one document, for many small documents whose per-document calls
(a model run of two texts, an upsert, a delete, each followed by an index optimisation) would otherwise
cost more than their embedding. It is the span ``retrieval.index`` (children ``retrieval.embed`` and the
store's ``qdrant.upsert``) and counts the chunks in ``INGESTION_CHUNKS`` once stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from medchat.platform.metrics import INGESTION_CHUNKS
from medchat.platform.spans import TRACER
from medchat.retrieval.chunking import Chunk
from medchat.retrieval.search import DocumentInfo, Retriever, document_vectors, embedding_text, passage_point


@dataclass(frozen=True, slots=True)
class DocumentChunks:
    """One document's part of a batch: its chunks, numbered 0..n-1 as ``chunk_document`` makes them."""

    document: DocumentInfo
    chunks: Sequence[Chunk]
    may_hold_more_points: bool
    """Indexed (or partly indexed) before, so points beyond its new chunk count may exist and are deleted.
    A fresh upload has none, which saves a store write per document."""


async def index_documents(retriever: Retriever, batch: Sequence[DocumentChunks]) -> None:
    """Embed the chunks of every document in ``batch`` and store them; points are keyed by (document, chunk
    index), so a document indexed again overwrites its own."""
    store = retriever.store
    texts = [embedding_text(chunk, item.document.title) for item in batch for chunk in item.chunks]
    attributes = {
        "retrieval.chunks": len(texts),
        "retrieval.documents": len(batch),
        "retrieval.collection": store.collection,
    }
    with TRACER.start_as_current_span("retrieval.index", attributes=attributes):
        with TRACER.start_as_current_span("retrieval.embed", attributes={"retrieval.chunks": len(texts)}):
            dense, sparse = await asyncio.gather(
                retriever.embedder.embed_async(texts, bulk=True), asyncio.to_thread(document_vectors, texts)
            )
        chunks = [(item.document, chunk) for item in batch for chunk in item.chunks]
        await store.upsert(
            [
                passage_point(document, chunk, vector, lexical)
                for (document, chunk), vector, lexical in zip(chunks, dense, sparse, strict=True)
            ]
        )
        INGESTION_CHUNKS.inc(len(chunks))
        await asyncio.gather(
            *(
                store.delete_document(item.document.document_id, from_chunk_index=len(item.chunks))
                for item in batch
                if item.may_hold_more_points
            )
        )

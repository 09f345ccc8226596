"""Ingestion throughput and hybrid search latency on the embedded store (Qdrant Edge).

Run: .venv/bin/python bench/search_latency.py [--points 50000] [--queries 500]

1. Ingestion: raw embedding throughput of MedQuAD answer chunks vs ``Retriever.index_chunks`` (embed
   + lexical vectors + upsert, pipelined) on the same chunks, as one long document and as many small ones.
2. Search at scale: ``--points`` passages made from MedQuAD answer chunks (their real embeddings, repeated
   with small perturbations of the vectors), 50 owners, a fifth private; the store's hybrid query with the
   visibility filter, then the whole ``Retriever.search`` (query embedding included), before and after
   the HNSW build. No pass/fail: numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from retrieval_data import CachedEmbedder, medquad

from medchat.retrieval import Retriever, SearchScope
from medchat.retrieval.chunking import Chunk
from medchat.retrieval.embeddings import Embedder
from medchat.retrieval.search import DocumentInfo, embedding_text
from medchat.retrieval.sparse import document_vector, query_vector
from medchat.retrieval.vectorstore import EdgeVectorStore, PassagePoint, PassageRecord

OWNERS = 50
INGEST_CHUNKS = 480


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    return f"p50 {p50 * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms   mean {statistics.fmean(ordered) * 1000:6.2f} ms"


async def ingestion(documents: dict, questions: list[str], directory: Path, rounds: int) -> None:
    """Best of ``rounds`` for each measure, alternating them, so a busy machine skews them alike."""
    chunks = [(doc_id, title, chunk) for doc_id, (title, doc_chunks) in documents.items() for chunk in doc_chunks]
    chunks = chunks[:INGEST_CHUNKS]
    texts = [embedding_text(chunk) for _, _, chunk in chunks]
    one_document = [replace(chunk, index=i) for i, (_, _, chunk) in enumerate(chunks)]
    by_document: dict[str, list[Chunk]] = {}
    for doc_id, _, chunk in chunks:
        by_document.setdefault(doc_id, []).append(chunk)
    embedder = Embedder()
    embedder.load()
    embedder.embed(texts[:32])
    store = EdgeVectorStore(directory / "ingest")
    await store.ensure_collection()
    retriever = Retriever(store, embedder=embedder)
    raw, one, many, sentences = 0.0, 0.0, 0.0, 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        embedder.embed(questions)
        sentences = max(sentences, len(questions) / (time.perf_counter() - started))
        started = time.perf_counter()
        embedder.embed(texts)
        raw = max(raw, len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        await retriever.index_chunks(DocumentInfo("long-document", "admin", "shared", "All"), one_document)
        one = max(one, len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        for doc_id, doc_chunks in by_document.items():
            await retriever.index_chunks(DocumentInfo(doc_id, "admin", "shared", doc_id), doc_chunks)
        many = max(many, len(texts) / (time.perf_counter() - started))
    tokens = np.mean([chunk.token_count for _, _, chunk in chunks])
    print(f"\nIngestion of {len(texts)} MedQuAD chunks (~{tokens:.0f} tokens each), best of {rounds}")
    print(f"  raw embedding of {len(questions)} questions (sentences)  {sentences:7.1f} sentences/s")
    print(f"  raw embedding (Embedder.embed, one call)   {raw:7.1f} chunks/s")
    print(f"  index_chunks, one {len(texts)}-chunk document    {one:7.1f} chunks/s  ({one / raw:.0%} of raw)")
    print(f"  index_chunks, {len(by_document)} small documents        {many:7.1f} chunks/s  ({many / raw:.0%} of raw)")
    await store.close()
    embedder.close()


def perturbed_points(documents: dict, vectors: np.ndarray, total: int) -> list[PassagePoint]:
    rng = np.random.default_rng(5)
    base = [(doc_id, title, chunk) for doc_id, (title, doc_chunks) in documents.items() for chunk in doc_chunks]
    sparse = [document_vector(embedding_text(chunk)) for _, _, chunk in base]
    points = []
    for n in range(total):
        index = n % len(base)
        doc_id, title, chunk = base[index]
        copy = n // len(base)
        vector = vectors[index] if copy == 0 else vectors[index] + 0.03 * rng.standard_normal(vectors.shape[1])
        owner = f"user{n % OWNERS}"
        record = PassageRecord(
            document_id=f"{doc_id}-copy{copy}",
            owner_id=owner,
            scope="private" if n % 5 == 0 else "shared",
            title=title,
            page=chunk.page,
            section=chunk.section,
            text=chunk.text,
            chunk_index=chunk.index,
        )
        points.append(PassagePoint(record, (vector / np.linalg.norm(vector)).astype(np.float32), sparse[index]))
    return points


async def search_latency(retriever: Retriever, store: EdgeVectorStore, queries: list[str], label: str) -> None:
    vectors = retriever.embedder.embed(queries)
    store_times, full_times = [], []
    for n, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
        scope = SearchScope(user_id=f"user{n % OWNERS}")
        started = time.perf_counter()
        await store.search(vector, query_vector(query), scope=scope, limit=18, mode="hybrid")
        store_times.append(time.perf_counter() - started)
    for n, query in enumerate(queries):
        scope = SearchScope(user_id=f"user{n % OWNERS}")
        started = time.perf_counter()
        await retriever.search(query, scope=scope)
        full_times.append(time.perf_counter() - started)
    print(f"  {label}: store hybrid query + filter     {percentiles(store_times)}")
    print(f"  {label}: Retriever.search (embeds query)  {percentiles(full_times)}")


LOOP_LAGS: list[float] = [0.0]


async def loop_lag() -> None:
    """Record how late a 10 ms sleep wakes up: the event loop's stalls."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        LOOP_LAGS.append(time.perf_counter() - started - 0.01)


async def concurrent_throughput(retriever: Retriever, queries: list[str], clients: int) -> None:
    gate = asyncio.Semaphore(clients)
    latencies: list[float] = []

    async def one(n: int, query: str) -> None:
        async with gate:
            started = time.perf_counter()
            await retriever.search(query, scope=SearchScope(user_id=f"user{n % OWNERS}"))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(n, q) for n, q in enumerate(queries)))
    elapsed = time.perf_counter() - started
    print(f"  {clients} concurrent clients: {len(queries) / elapsed:6.1f} searches/s   {percentiles(latencies)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip-ingestion", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="ingestion measurements, best kept")
    args = parser.parse_args()
    corpus, rows = medquad(foci=600)
    questions = [row["question"] for row in rows][: args.queries]
    with tempfile.TemporaryDirectory(prefix="medchat-latency-") as name:
        directory = Path(name)
        if not args.skip_ingestion:
            await ingestion(corpus.documents, questions, directory, args.rounds)

        embedder = CachedEmbedder()
        texts = [embedding_text(chunk) for _, chunks in corpus.documents.values() for chunk in chunks]
        vectors = embedder.embed(texts)
        embedder.save()
        points = perturbed_points(corpus.documents, vectors, args.points)
        store = EdgeVectorStore(directory / "scale")
        await store.ensure_collection()
        lag = asyncio.create_task(loop_lag())
        started = time.perf_counter()
        for start in range(0, len(points), 1000):
            await store.upsert(points[start : start + 1000])
        upserted = time.perf_counter() - started
        print(f"\nSearch over {await store.count()} passages ({OWNERS} owners, 1/5 private), {len(questions)} queries")
        print(f"  upsert: {upserted:.1f} s ({len(points) / upserted:,.0f} points/s, vectors precomputed)")
        retriever = Retriever(store, embedder=Embedder())
        retriever.embedder.load()
        await search_latency(retriever, store, questions[:100], "while indexing")
        await store.optimize()
        print(f"  upsert + index build done after {time.perf_counter() - started:.1f} s")
        lag.cancel()
        print(f"  longest event-loop stall meanwhile (GIL held by Qdrant Edge): {max(LOOP_LAGS):.2f} s")
        await search_latency(retriever, store, questions, "indexed")
        for clients in (1, 4, 16):
            await concurrent_throughput(retriever, questions, clients)
        started = time.perf_counter()
        await store.close()
        reopened = EdgeVectorStore(directory / "scale")
        await reopened.ensure_collection()
        print(f"  close + reopen: {time.perf_counter() - started:.2f} s")
        await reopened.close()


if __name__ == "__main__":
    asyncio.run(main())

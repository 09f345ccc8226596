"""Retrieval quality: recall@1, recall@5 and MRR@10 for dense, lexical and fused search.

Run: .venv/bin/python bench/retrieval_eval.py [--foci 600] [--quick]

Sets: MedQuAD (all answers of ``--foci`` random topics, queried with their questions), the same
corpus queried with "chatty" conversational wrappers of those questions, and PubMedQA PQA-L (all
1,000 abstracts, queried with their questions). Everything goes through the public Retriever on a
Qdrant Edge store, with the score threshold off; relevance is per document (any chunk of the
relevant answer or abstract counts). A last table shows how the cosine threshold separates the
top hit of on-topic questions from off-topic ones.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from retrieval_data import CachedEmbedder, Corpus, chatty_queries, medquad, pubmedqa

from medchat.retrieval import Retriever, SearchScope
from medchat.retrieval.search import DocumentInfo
from medchat.retrieval.vectorstore import EdgeVectorStore, HybridParams, SearchMode

SCOPE = SearchScope(user_id="bench-user")
TOP_K = 10
CONCURRENCY = 4
CONFIGS: list[tuple[str, SearchMode, HybridParams]] = [
    ("dense", "dense", HybridParams()),
    ("lexical (BM25)", "sparse", HybridParams()),
    ("RRF k=60", "hybrid", HybridParams(fusion="rrf", dense_weight=1, rrf_k=60)),
    ("RRF k=60, dense x3", "hybrid", HybridParams(fusion="rrf", dense_weight=3, rrf_k=60)),
    ("RRF k=2, dense x3", "hybrid", HybridParams(fusion="rrf", dense_weight=3, rrf_k=2)),
    ("DBSF", "hybrid", HybridParams(fusion="dbsf", dense_weight=1)),
    ("DBSF, dense x2", "hybrid", HybridParams(fusion="dbsf", dense_weight=2)),
    ("DBSF, dense x3 (default)", "hybrid", HybridParams()),
]
QUICK_CONFIGS = {"dense", "lexical (BM25)", "RRF k=60", "DBSF, dense x3 (default)"}
OFF_TOPIC = [
    "What is the capital of France?",
    "How do I fix a flat tyre on my bicycle?",
    "Who won the football world cup in 2014?",
    "What's a good recipe for banana bread?",
    "How do I reset my router password?",
    "Which programming language should I learn first?",
    "What time does the train to Edinburgh leave?",
    "Can you recommend a good science fiction novel?",
    "How many moons does Jupiter have?",
    "What is the best way to learn to play the guitar?",
    "How do I change the oil in my car?",
    "What is the exchange rate between euros and dollars?",
    "Tell me a joke about penguins.",
    "How tall is the Eiffel Tower?",
    "What should I plant in my garden in April?",
    "How do I write a cover letter for a job application?",
]


async def index(corpus: Corpus, retriever: Retriever) -> tuple[float, int]:
    started = time.perf_counter()
    for document_id, (title, chunks) in corpus.documents.items():
        await retriever.index_chunks(DocumentInfo(document_id, "bench-admin", "shared", title), chunks)
    return time.perf_counter() - started, corpus.chunk_count


async def ranked_documents(retriever: Retriever, query: str, mode: SearchMode) -> list[str]:
    passages = await retriever.search(query, scope=SCOPE, top_k=TOP_K, mode=mode, score_threshold=0.0)
    return list(dict.fromkeys(passage.document_id for passage in passages))


async def evaluate(
    retriever: Retriever, queries: list[tuple[str, set[str]]], mode: SearchMode
) -> tuple[float, float, float]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def rank_of_first_relevant(query: str, relevant: set[str]) -> int | None:
        async with gate:
            documents = await ranked_documents(retriever, query, mode)
        return next((rank for rank, doc in enumerate(documents[:10], start=1) if doc in relevant), None)

    ranks = await asyncio.gather(*(rank_of_first_relevant(q, r) for q, r in queries))
    recall_1 = np.mean([rank == 1 for rank in ranks])
    recall_5 = np.mean([rank is not None and rank <= 5 for rank in ranks])
    mrr_10 = np.mean([1.0 / rank if rank else 0.0 for rank in ranks])
    return float(recall_1), float(recall_5), float(mrr_10)


def print_table(title: str, rows: list[tuple[str, tuple[float, float, float]]]) -> None:
    print(f"\n{title}")
    print(f"| {'method':<26} | recall@1 | recall@5 | MRR@10 |")
    print(f"|{'-' * 28}|----------|----------|--------|")
    for label, (r1, r5, mrr) in rows:
        print(f"| {label:<26} | {r1:8.3f} | {r5:8.3f} | {mrr:6.3f} |")


async def threshold_table(retriever: Retriever, queries: list[tuple[str, set[str]]]) -> None:
    async def top_score(query: str) -> float:
        """The best cosine among the hits: at a threshold above it, the search returns nothing."""
        passages = await retriever.search(query, scope=SCOPE, top_k=5, score_threshold=0.0)
        return max((passage.score for passage in passages), default=0.0)

    on_topic = [await top_score(query) for query, _ in queries[:400]]
    off_topic = [await top_score(query) for query in OFF_TOPIC]
    print("\nCosine threshold: share of queries that still get passages (400 MedQuAD questions, 16 off-topic)")
    print("| threshold | on-topic queries answered | off-topic queries answered |")
    print("|-----------|---------------------------|----------------------------|")
    for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        answered = np.mean([score >= threshold for score in on_topic])
        wrongly = np.mean([score >= threshold for score in off_topic])
        print(f"| {threshold:9.2f} | {answered:25.3f} | {wrongly:26.3f} |")
    print(f"best cosine, off-topic: max {max(off_topic):.3f}, median {np.median(off_topic):.3f}; ", end="")
    print(f"on-topic: min {min(on_topic):.3f}, median {np.median(on_topic):.3f}")


async def run_corpus(
    corpus: Corpus, sets: list[tuple[str, list[tuple[str, set[str]]]]], embedder: CachedEmbedder, quick: bool
) -> Retriever:
    with tempfile.TemporaryDirectory(prefix="medchat-eval-") as directory:
        store = EdgeVectorStore(Path(directory) / "qdrant")
        await store.ensure_collection()
        base = Retriever(store, embedder=embedder, score_threshold=0.0)
        seconds, chunks = await index(corpus, base)
        embedder.save()
        await store.optimize()
        print(f"\n{corpus.name}: {len(corpus.documents)} documents, {chunks} chunks, indexed in {seconds:.1f} s")
        for set_name, queries in sets:
            rows = []
            for label, mode, params in CONFIGS:
                if quick and label not in QUICK_CONFIGS:
                    continue
                retriever = Retriever(store, embedder=embedder, score_threshold=0.0, hybrid=params)
                rows.append((label, await evaluate(retriever, queries, mode)))
            embedder.save()
            print_table(f"{set_name}: {len(queries)} queries", rows)
        if corpus.name == "MedQuAD":
            await threshold_table(base, sets[0][1])
        await store.close()
    return base


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--foci", type=int, default=600, help="MedQuAD topics to index (all their answers)")
    parser.add_argument("--quick", action="store_true", help="only dense, lexical, RRF and DBSF")
    parser.add_argument("--skip-pubmedqa", action="store_true")
    args = parser.parse_args()
    embedder = CachedEmbedder()
    corpus, rows = medquad(foci=args.foci)
    relevant = dict(corpus.queries)
    chatty = chatty_queries(rows, relevant=relevant)
    await run_corpus(corpus, [("MedQuAD questions", corpus.queries), ("MedQuAD chatty", chatty)], embedder, args.quick)
    if not args.skip_pubmedqa:
        pubmed = pubmedqa()
        await run_corpus(pubmed, [("PubMedQA questions", pubmed.queries)], embedder, args.quick)


if __name__ == "__main__":
    asyncio.run(main())

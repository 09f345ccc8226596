"""Retrieval quality: recall@1, recall@5 and MRR@10 for dense, lexical and fused search, and five figures.

Run: .venv/bin/python bench/retrieval_eval.py [--sets medquad,pubmedqa,rare,defined,followup,consumer,sources]
     [--foci 600] [--quick]
Before a change: PYTHONPATH=/path/to/old/checkout/src .venv/bin/python bench/retrieval_eval.py (same file).

Tables (``medquad``, ``pubmedqa``): MedQuAD (all answers of ``--foci`` random topics, queried with their
questions), the same corpus queried with "chatty" conversational wrappers of those questions, and
PubMedQA PQA-L (all 1,000 abstracts, queried with their questions), for each search configuration; then
how the cosine threshold separates the top hit of on-topic questions from off-topic ones.

Figures (default search, ``mode="hybrid"`` with default parameters, score threshold off unless said):
1. ``rare``: made-up drug/gene/code names, each in one extra document: share ranked first, recall@5.
2. ``defined``: "What is X?" where X is defined inside a long per-topic document: recall@5, MRR@10.
3. ``followup``: recall@5 of a follow-up (a) asked with the topic named, (b) as typed ("how is it
   treated?"), (c) made standalone by ``medchat.chat.answering.queries.standalone_query``.
4. ``consumer``: chatty questions and longer personal narratives: nDCG@10 dense-only vs default.
5. ``sources``: ROUGE-L of the sources-only extractive answer (default search, default threshold, 6
   passages) against the MedQuAD reference answer.

Relevance is per document (any chunk of a relevant document counts; a document counts at its first
rank). Embeddings are cached on disk (see ``retrieval_data``), so only new texts are embedded.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import random
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import numpy as np
from retrieval_data import CachedEmbedder, Corpus, chatty_queries, medquad, pubmedqa
from retrieval_sets import answer_documents, defined_terms, follow_ups, narratives, rare_terms

from medchat.retrieval import Retriever, SearchScope
from medchat.retrieval.search import DocumentInfo
from medchat.retrieval.vectorstore import EdgeVectorStore, HybridParams, SearchMode

SCOPE = SearchScope(user_id="bench-user")
TOP_K = 10
CONCURRENCY = 4
SETS = ("medquad", "pubmedqa", "rare", "defined", "followup", "consumer", "sources")
SOURCES_QUESTIONS = 300
SOURCES_TOP_K = 6
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
Queries = list[tuple[str, set[str]]]


# --- ranking and metrics -------------------------------------------------------------------------


async def index(corpus: Corpus, retriever: Retriever) -> tuple[float, int]:
    started = time.perf_counter()
    for document_id, (title, chunks) in corpus.documents.items():
        await retriever.index_chunks(DocumentInfo(document_id, "bench-admin", "shared", title), chunks)
    return time.perf_counter() - started, corpus.chunk_count


async def ranked_documents(retriever: Retriever, query: str, mode: SearchMode) -> list[str]:
    passages = await retriever.search(query, scope=SCOPE, top_k=TOP_K, mode=mode, score_threshold=0.0)
    return list(dict.fromkeys(passage.document_id for passage in passages))


async def rankings(retriever: Retriever, queries: Sequence[str], mode: SearchMode = "hybrid") -> list[list[str]]:
    """Each query's documents in rank order (a document at its first passage), ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(query: str) -> list[str]:
        async with gate:
            return await ranked_documents(retriever, query, mode)

    return list(await asyncio.gather(*(one(query) for query in queries)))


def first_relevant(documents: list[str], relevant: set[str]) -> int | None:
    return next((rank for rank, doc in enumerate(documents[:10], start=1) if doc in relevant), None)


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    return float(np.mean([rank is not None and rank <= k for rank in ranks]))


def mrr_10(ranks: Sequence[int | None]) -> float:
    return float(np.mean([1.0 / rank if rank else 0.0 for rank in ranks]))


def ndcg_10(documents: list[str], relevant: set[str]) -> float:
    """Binary relevance over the first 10 distinct documents."""
    gain = sum(1 / np.log2(rank + 1) for rank, doc in enumerate(documents[:10], start=1) if doc in relevant)
    ideal = sum(1 / np.log2(rank + 1) for rank in range(1, min(len(relevant), 10) + 1))
    return float(gain / ideal)


async def evaluate(retriever: Retriever, queries: Queries, mode: SearchMode) -> tuple[float, float, float]:
    ranked = await rankings(retriever, [query for query, _ in queries], mode)
    ranks = [first_relevant(documents, relevant) for documents, (_, relevant) in zip(ranked, queries, strict=True)]
    return recall_at(ranks, 1), recall_at(ranks, 5), mrr_10(ranks)


def print_table(title: str, rows: list[tuple[str, tuple[float, float, float]]]) -> None:
    print(f"\n{title}")
    print(f"| {'method':<26} | recall@1 | recall@5 | MRR@10 |")
    print(f"|{'-' * 28}|----------|----------|--------|")
    for label, (r1, r5, mrr) in rows:
        print(f"| {label:<26} | {r1:8.3f} | {r5:8.3f} | {mrr:6.3f} |")


@contextmanager
def timed(name: str):
    started = time.perf_counter()
    yield
    one, five, fifteen = os.getloadavg()
    seconds = time.perf_counter() - started
    print(f"[{name}: {seconds:.0f} s, load average {one:.2f} {five:.2f} {fifteen:.2f}]", flush=True)


@asynccontextmanager
async def indexed(corpus: Corpus, embedder: CachedEmbedder) -> AsyncIterator[EdgeVectorStore]:
    with tempfile.TemporaryDirectory(prefix="medchat-eval-") as directory:
        store = EdgeVectorStore(Path(directory) / "qdrant")
        await store.ensure_collection()
        try:
            seconds, chunks = await index(corpus, Retriever(store, embedder=embedder, score_threshold=0.0))
            embedder.save()
            await store.optimize()
            print(f"\n{corpus.name}: {len(corpus.documents)} documents, {chunks} chunks, indexed in {seconds:.1f} s")
            yield store
        finally:
            embedder.save()
            await store.close()


def default_retriever(store: EdgeVectorStore, embedder: CachedEmbedder) -> Retriever:
    """The default search (hybrid, default parameters) with the score threshold off: ranking only."""
    return Retriever(store, embedder=embedder, score_threshold=0.0)


# --- the existing tables -------------------------------------------------------------------------


async def tables(
    store: EdgeVectorStore, sets: list[tuple[str, Queries]], embedder: CachedEmbedder, quick: bool
) -> None:
    for set_name, queries in sets:
        rows = []
        for label, mode, params in CONFIGS:
            if quick and label not in QUICK_CONFIGS:
                continue
            retriever = Retriever(store, embedder=embedder, score_threshold=0.0, hybrid=params)
            rows.append((label, await evaluate(retriever, queries, mode)))
        embedder.save()
        print_table(f"{set_name}: {len(queries)} queries", rows)


async def threshold_table(retriever: Retriever, queries: Queries) -> None:
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


# --- figures 1-4 ---------------------------------------------------------------------------------


async def rare_figure(store: EdgeVectorStore, queries: Queries, embedder: CachedEmbedder) -> None:
    print(f"\nFigure 1, rare terms: {len(queries)} made-up names, each in one extra document (target: first >= 0.95)")
    print("| search           | term's document first | recall@5 | MRR@10 |")
    print("|------------------|-----------------------|----------|--------|")
    for label, mode in (("dense", "dense"), ("lexical (BM25)", "sparse"), ("default (hybrid)", "hybrid")):
        first, r5, mrr = await evaluate(default_retriever(store, embedder), queries, mode)
        print(f"| {label:<16} | {first:21.3f} | {r5:8.3f} | {mrr:6.3f} |")


async def defined_figure(store: EdgeVectorStore, queries: Queries, embedder: CachedEmbedder) -> None:
    print(
        f"\nFigure 2, defined terms: {len(queries)} 'What is X?', X defined inside a long document "
        "(target: recall@5 >= 0.90)"
    )
    print("| search           | recall@1 | recall@5 | MRR@10 |")
    print("|------------------|----------|----------|--------|")
    for label, mode in (("dense", "dense"), ("default (hybrid)", "hybrid")):
        r1, r5, mrr = await evaluate(default_retriever(store, embedder), queries, mode)
        print(f"| {label:<16} | {r1:8.3f} | {r5:8.3f} | {mrr:6.3f} |")


def _standalone() -> Callable[..., str] | None:
    try:
        from medchat.chat.answering.queries import standalone_query  # absent before the change
    except ImportError:
        return None
    return standalone_query


async def followup_figure(store: EdgeVectorStore, base_rows: list[dict], embedder: CachedEmbedder) -> None:
    pairs = follow_ups(base_rows)
    standalone = _standalone()
    variants: list[tuple[str, list[str] | None]] = [
        ("(a) standalone, topic named", [pair.original for pair in pairs]),
        ("(b) bare follow-up", [pair.bare for pair in pairs]),
        ("(c) standalone_query(b)", [standalone(p.bare, [p.first]) for p in pairs] if standalone else None),
    ]
    retriever = default_retriever(store, embedder)
    print(
        f"\nFigure 3, follow-ups: {len(pairs)} questions asked after the topic's 'What is X?' "
        "(target: (c) within 0.05 of (a))"
    )
    print("| query                          | recall@5 | MRR@10 |")
    print("|--------------------------------|----------|--------|")
    for label, texts in variants:
        if texts is None:
            print(f"| {label:<30} | {'n/a':>8} | {'n/a':>6} |")
            continue
        ranked = await rankings(retriever, texts)
        ranks = [first_relevant(documents, pair.relevant) for documents, pair in zip(ranked, pairs, strict=True)]
        print(f"| {label:<30} | {recall_at(ranks, 5):8.3f} | {mrr_10(ranks):6.3f} |")
    if standalone:
        for pair in pairs[:3]:
            print(f"  e.g. {pair.bare!r} after {pair.first!r} -> {standalone(pair.bare, [pair.first])!r}")


async def consumer_figure(store: EdgeVectorStore, sets: list[tuple[str, Queries]], embedder: CachedEmbedder) -> None:
    retriever = default_retriever(store, embedder)
    print("\nFigure 4, consumer-style questions (target: default nDCG@10 >= dense-only + 0.03)")
    print("| set                        | search           | nDCG@10 | recall@5 | MRR@10 |")
    print("|----------------------------|------------------|---------|----------|--------|")
    for set_name, queries in sets:
        for label, mode in (("dense-only", "dense"), ("default (hybrid)", "hybrid")):
            ranked = await rankings(retriever, [query for query, _ in queries], mode)
            pairs = list(zip(ranked, queries, strict=True))
            ndcg = np.mean([ndcg_10(documents, relevant) for documents, (_, relevant) in pairs])
            ranks = [first_relevant(documents, relevant) for documents, (_, relevant) in pairs]
            name = f"{set_name} ({len(queries)})"
            print(f"| {name:<26} | {label:<16} | {ndcg:7.3f} | {recall_at(ranks, 5):8.3f} | {mrr_10(ranks):6.3f} |")
        embedder.save()


# --- figure 5: sources-only answers --------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
_BULLET = re.compile(r"^\s*(?:[-•*]|\d+[.)])\s+", re.MULTILINE)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence of two token lists, bit-parallel over ``a`` (Hyyrö 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


def rouge_l(candidate: str, reference: str) -> tuple[float, float, float]:
    """(recall, precision, F1) of the LCS over lowercased word tokens."""
    ours, theirs = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    common = lcs_length(ours, theirs)
    if not common:
        return 0.0, 0.0, 0.0
    recall, precision = common / len(theirs), common / len(ours)
    return recall, precision, 2 * recall * precision / (recall + precision)


def _answer_body(answer: str, notices: Sequence[str]) -> str:
    """The quoted text: notices (any of the module's long string constants), ``[n]`` and bullets removed."""
    for notice in notices:
        answer = answer.replace(notice, "")
    return _BULLET.sub("", _CITATION.sub("", answer)).strip()


async def sources_figure(
    store: EdgeVectorStore, base_rows: list[dict], embedder: CachedEmbedder, questions: int
) -> None:
    from medchat.llm import sources_only
    from medchat.llm.types import ContextPassage

    answer_fn = sources_only.extractive_answer
    is_async = inspect.iscoroutinefunction(answer_fn)
    takes_embed = "embed" in inspect.signature(answer_fn).parameters
    notices = sorted(
        (
            value
            for name, value in vars(sources_only).items()
            if name.isupper() and isinstance(value, str) and len(value) > 20
        ),
        key=len,
        reverse=True,
    )
    retriever = Retriever(store, embedder=embedder)  # the retriever's default threshold
    sample = random.Random(5).sample(base_rows, min(questions, len(base_rows)))
    scores, empty, words = [], 0, []
    for row in sample:
        passages = await retriever.search(row["question"], scope=SCOPE, top_k=SOURCES_TOP_K)
        context = [ContextPassage(number=i, title=p.title, page=p.page, text=p.text) for i, p in enumerate(passages, 1)]
        kwargs = {"embed": embedder.embed_async} if takes_embed else {}
        answer = answer_fn(row["question"], context, **kwargs)
        if is_async or inspect.isawaitable(answer):
            answer = await answer
        body = _answer_body(answer, notices)
        empty += not body
        words.append(len(body.split()))
        scores.append(rouge_l(body, row["answer"]))
    embedder.save()
    recall, precision, f1 = np.mean(scores, axis=0)
    mode = f"{'async' if is_async else 'sync'}{', embed=' if takes_embed else ''}"
    print(
        f"\nFigure 5, sources-only answers: {len(sample)} MedQuAD questions, {SOURCES_TOP_K} passages, "
        f"extractive_answer ({mode})"
    )
    print("| ROUGE-L recall | precision | F1    | answers with no quote | mean words |")
    print("|----------------|-----------|-------|-----------------------|------------|")
    print(f"| {recall:14.3f} | {precision:9.3f} | {f1:5.3f} | {empty / len(sample):21.3f} | {np.mean(words):10.1f} |")


# --- main ----------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from {', '.join(SETS)}")
    parser.add_argument("--foci", type=int, default=600, help="MedQuAD topics to index (all their answers)")
    parser.add_argument("--quick", action="store_true", help="tables: only dense, lexical, RRF and DBSF")
    parser.add_argument("--skip-pubmedqa", action="store_true")
    parser.add_argument("--rare", type=int, default=200, help="made-up terms (figure 1)")
    parser.add_argument("--defined", type=int, default=300, help="at most this many 'What is X?' (figure 2)")
    parser.add_argument("--answers", type=int, default=SOURCES_QUESTIONS, help="questions answered (figure 5)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.sets.split(",") if name.strip()]
    if unknown := set(chosen) - set(SETS):
        parser.error(f"unknown sets: {', '.join(sorted(unknown))}")
    if args.skip_pubmedqa and "pubmedqa" in chosen:
        chosen.remove("pubmedqa")
    import medchat

    print(f"medchat from {Path(medchat.__file__).parent}; sets: {', '.join(chosen)}", flush=True)
    embedder = CachedEmbedder()
    corpus, rows = medquad(foci=args.foci)
    relevant = dict(corpus.queries)
    chatty = chatty_queries(rows, relevant=relevant)
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        base: EdgeVectorStore | None = None

        async def base_store() -> EdgeVectorStore:
            nonlocal base
            if base is None:
                with timed("MedQuAD index"):
                    base = await stack.enter_async_context(indexed(corpus, embedder))
            return base

        if "medquad" in chosen:
            store = await base_store()
            with timed("medquad tables"):
                await tables(
                    store, [("MedQuAD questions", corpus.queries), ("MedQuAD chatty", chatty)], embedder, args.quick
                )
                await threshold_table(Retriever(store, embedder=embedder, score_threshold=0.0), corpus.queries)
        if "pubmedqa" in chosen:
            with timed("pubmedqa (index and table)"):
                pubmed = pubmedqa()
                async with indexed(pubmed, embedder) as store:
                    await tables(store, [("PubMedQA questions", pubmed.queries)], embedder, args.quick)
        if "rare" in chosen:
            with timed("figure 1, rare terms (index and queries)"):
                rare_corpus, queries = rare_terms(corpus, {row["focus"] for row in rows}, count=args.rare)
                async with indexed(rare_corpus, embedder) as store:
                    await rare_figure(store, queries, embedder)
        if "defined" in chosen:
            with timed("figure 2, defined terms (index and queries)"):
                long_corpus, queries = defined_terms(corpus, rows, max_queries=args.defined)
                async with indexed(long_corpus, embedder) as store:
                    await defined_figure(store, queries, embedder)
        if "followup" in chosen:
            store = await base_store()
            with timed("figure 3, follow-ups"):
                await followup_figure(store, rows, embedder)
        if "consumer" in chosen:
            store = await base_store()
            with timed("figure 4, consumer questions"):
                stories = narratives(rows, relevant=answer_documents(rows))
                await consumer_figure(store, [("MedQuAD chatty", chatty), ("narratives", stories)], embedder)
        if "sources" in chosen:
            store = await base_store()
            with timed("figure 5, sources-only answers"):
                await sources_figure(store, rows, embedder, args.answers)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())

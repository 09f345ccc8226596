"""Shared by the retrieval benchmarks: the MedQuAD and PubMedQA corpora, chatty queries, a cached embedder.

The data stays in ``../shared/data`` (relative to the repository root) and is never copied into the
repository. Embeddings are cached under the system temp dir, keyed by text, so re-runs while tuning
skip the model; delete ``medchat-bench-cache`` to measure cold.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medchat.retrieval.chunking import Chunk, chunk_document
from medchat.retrieval.document import ParsedPage
from medchat.retrieval.embeddings import Embedder

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = REPOSITORY.parent / "shared" / "data"
MEDQUAD = DATA / "medquad" / "medquad.jsonl.gz"
PUBMEDQA = DATA / "pubmedqa" / "ori_pqal.json.gz"
CACHE = Path(tempfile.gettempdir()) / "medchat-bench-cache"
CHUNK_TOKENS = 220
OVERLAP_TOKENS = 40


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: dict[str, tuple[str, list[Chunk]]]
    """document id -> (title, chunks)"""
    queries: list[tuple[str, set[str]]]
    """(query, ids of the relevant documents)"""

    @property
    def chunk_count(self) -> int:
        return sum(len(chunks) for _, chunks in self.documents.values())


def _chunks(text: str) -> list[Chunk]:
    return chunk_document([ParsedPage(1, text)], chunk_tokens=CHUNK_TOKENS, overlap_tokens=OVERLAP_TOKENS)


def medquad_rows() -> list[dict]:
    with gzip.open(MEDQUAD, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def medquad(*, foci: int, seed: int = 7) -> tuple[Corpus, list[dict]]:
    """All question-answer pairs of ``foci`` randomly chosen topics (several answers per disease, so
    a query must pick the right aspect, not just the right disease). One document per distinct answer."""
    rows = medquad_rows()
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["answer"].strip() and row["question"].strip():
            by_focus[row["focus"]].append(row)
    chosen = random.Random(seed).sample(sorted(by_focus), foci)
    selected = [row for focus in chosen for row in by_focus[focus]]
    answer_ids: dict[str, str] = {}
    documents: dict[str, tuple[str, list[Chunk]]] = {}
    for row in selected:
        if row["answer"] not in answer_ids:
            answer_ids[row["answer"]] = row["id"]
            documents[row["id"]] = (row["focus"], _chunks(row["answer"]))
    queries = [(row["question"], {answer_ids[row["answer"]]}) for row in selected]
    return Corpus("MedQuAD", documents, queries), selected


def pubmedqa() -> Corpus:
    with gzip.open(PUBMEDQA, "rt", encoding="utf-8") as handle:
        items = json.load(handle)
    documents = {pmid: (pmid, _chunks("\n\n".join(item["CONTEXTS"]))) for pmid, item in items.items()}
    queries = [(item["QUESTION"], {pmid}) for pmid, item in items.items()]
    return Corpus("PubMedQA", documents, queries)


_RELATIVES = ["my mum", "my dad", "my husband", "my wife", "my grandmother", "my son", "my daughter", "my brother"]
_MEDICINES = ["metformin", "amlodipine", "ibuprofen", "levothyroxine", "omeprazole", "sertraline", "warfarin"]
_OTHER = ["her knees", "his blood pressure", "the reflux", "the thyroid", "her back pain", "his cholesterol"]
_TEMPLATES = [
    "{relative} was told last week that they have {focus} and they already take {medicine} for {other}. "
    "We are all a bit lost, what should we ask the doctor? {question}",
    "Hi, sorry if this is a silly question. {Relative} got diagnosed with {focus} and the specialist used a lot "
    "of words we did not understand. {question} Thanks so much for any help.",
    "{question} I'm asking because {relative} has {focus}, takes {medicine} every morning and lives far from "
    "a hospital, so any advice helps.",
    "ok so the GP said something about {focus}?? been googling all night and I'm more confused than before. "
    "{question_lower} also is {medicine} ok with that",
    "Hello, I am 67 and I take {medicine} for {other}. Recently my doctor said I might have {focus}. "
    "{question} Also, is it fine to keep walking every day?",
    "We just got back from the clinic. They think {relative} might have {focus}. Before the next appointment "
    "I want to understand it better: {question_lower}",
]


def chatty_queries(
    rows: Sequence[dict], *, relevant: dict[str, set[str]], seed: int = 11
) -> list[tuple[str, set[str]]]:
    """MedQuAD questions wrapped in long conversational messages (deterministic for a seed)."""
    rng = random.Random(seed)
    queries = []
    for row in rows:
        relative = rng.choice(_RELATIVES)
        text = rng.choice(_TEMPLATES).format(
            relative=relative,
            Relative=relative.capitalize(),
            focus=row["focus"],
            medicine=rng.choice(_MEDICINES),
            other=rng.choice(_OTHER),
            question=row["question"],
            question_lower=row["question"][0].lower() + row["question"][1:],
        )
        queries.append((text, relevant[row["question"]]))
    return queries


class CachedEmbedder(Embedder):
    """The real embedder, with vectors remembered on disk between runs (benchmark tuning only)."""

    def __init__(self) -> None:
        super().__init__()
        CACHE.mkdir(parents=True, exist_ok=True)
        self._file = CACHE / "embeddings.npz"
        self._known: dict[str, np.ndarray] = {}
        if self._file.exists():
            with np.load(self._file) as stored:
                self._known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        self._dirty = False

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(text) for text in texts]
        missing = [i for i, key in enumerate(keys) if key not in self._known]
        if missing:
            fresh = super().embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                self._known[keys[i]] = vector
            self._dirty = True
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._known[key] for key in keys])

    def save(self) -> None:
        """Write the cache, merged with what another run may have saved meanwhile (atomic replace)."""
        if self._dirty:
            if self._file.exists():
                with np.load(self._file) as stored:
                    for key, vector in zip(stored["keys"].tolist(), stored["vectors"], strict=True):
                        self._known.setdefault(key, vector)
            partial = self._file.with_suffix(f".{os.getpid()}.npz")
            keys = np.array(list(self._known))
            np.savez(partial, keys=keys, vectors=np.stack(list(self._known.values())))
            os.replace(partial, self._file)
            self._dirty = False

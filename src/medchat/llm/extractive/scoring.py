"""Which sentences answer the question: scored by meaning and shared terms, picked by MMR.

Each sentence is scored against the question by the knowledge base's own sentence embeddings (cosine)
plus IDF-weighted term overlap and a small prior for better-ranked passages; without an embedder, by
term overlap alone. The best few are picked by maximal marginal relevance (near-duplicates from
overlapping chunks are dropped).

Each sentence is embedded under its heading ("Treating a flare: Rest the joint."), which lets the
model see what a short sentence is about. Cost: only a shortlist is embedded (the best ``SHORTLIST``
sentences by term overlap plus each passage's first ``LEAD_SENTENCES``), in one call with the question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from medchat.llm.extractive.sentences import Sentence

log = structlog.get_logger(__name__)

SentenceEmbedder = Callable[[Sequence[str]], Awaitable[Any]]
"""Texts -> a numpy array of unit-length float32 rows, one per text: the knowledge base's embedder
(``embed_async``). Typed loosely so that importing ``medchat.llm`` never loads numpy."""

MAX_SENTENCES = 7
MAX_WORDS = 160
"""The quote's budget: about what a model's answer runs to. On 300 MedQuAD questions (bench/retrieval_eval.py
--sets sources) 5 sentences / 130 words quoted 61 words on average for a ROUGE-L F1 of 0.261, 7 / 160
quote 128 for 0.290: the sources' answers are long, and the extra sentences are on the question."""

SHORTLIST = 8
LEAD_SENTENCES = 0
"""At most SHORTLIST + LEAD_SENTENCES per passage sentences are embedded, each about as costly as a query
embedding, so this bounds the answer's CPU (~8 model runs of ~35 tokens). On four leaflets and 19
questions, 8, 16 and 24 (+ 2 per passage) chose the same sentences: the best ones share terms with the
question."""
EMBEDDED_WORDS = 40
LEXICAL_WEIGHT = 1.0
"""score = cosine + LEXICAL_WEIGHT * overlap (0..1) + prior. Overlap separates sentences on one topic:
MiniLM puts most sentences about gout flares at a similar cosine to "How is a gout flare treated?"
(0.5-0.7), and only the treatment sentences also share "treat". On four leaflets and 31 questions,
weights 0.5-1.5 put a good sentence first in 38-40 of 43 answers (30 when sentences are embedded
without their heading); 1.0 keeps a wider margin where topic words alone mislead."""
PASSAGE_PRIOR = 0.05
"""Added as PASSAGE_PRIOR / (1 + rank): passages arrive best first; enough to break near-ties only."""
COSINE_FLOOR = 0.35
"""A sentence sharing no term with the question counts as on topic from this cosine up. With
all-MiniLM-L6-v2, sentences on the question's subject in other words score about 0.4-0.55 ("What does
gout feel like?" / "The joint becomes suddenly very painful, hot, swollen and red": 0.41), unrelated
ones under 0.3 (-0.1-0.2 across topics, 0.29 for a gout trigger against "what causes gout")."""
RELATIVE_FLOOR = 0.4
"""A sentence is quoted only if it scores at least this fraction of the best one (LEXICAL_RELATIVE_FLOOR
by term overlap alone). On 300 MedQuAD questions, floors of 0.85 / 0.6 / 0.5 / 0.4 gave ROUGE-L F1
0.261 / 0.273 / 0.283 / 0.290 with the embedder (recall 0.241 / 0.290 / 0.339 / 0.352): what a higher
floor leaves out is mostly still on the question."""
LEXICAL_RELATIVE_FLOOR = 0.4
LEXICAL_HEADING_WEIGHT = 0.5
"""By term overlap alone, a question term only in a sentence's heading counts half (else every sentence
under a matching heading ties); with embeddings it counts fully, as the heading is embedded too."""
MMR_LAMBDA = 0.7
REDUNDANT_COSINE = 0.9
"""Rewordings of one sentence score 0.95+; distinct sentences on one topic 0.3-0.75."""
REDUNDANT_JACCARD = 0.75

WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves tell know explain please much many get also may might
    anti non s t""".split()  # noqa: SIM905
)
_SUFFIXES = (
    "ational",
    "atory",
    "ations",
    "ation",
    "ments",
    "ment",
    "ities",
    "ity",
    "ness",
    "ings",
    "ing",
    "ful",
    "ies",
    "ied",
    "edly",
    "ed",
    "es",
    "s",
)
_SUFFIX_REPLACEMENT = {"ational": "ate", "ies": "y", "ied": "y"}


@dataclass(slots=True)
class _Candidate:
    sentence: Sentence
    score: float
    row: int = -1
    """Row of its embedding, or -1 when scored by term overlap only."""


async def best_sentences(question: str, sentences: list[Sentence], embed: SentenceEmbedder | None) -> list[Sentence]:
    question_terms = set(terms(question))
    if embed is not None:
        try:
            return await _by_meaning(question, sentences, _lexical_scores(question_terms, sentences, 1.0), embed)
        except Exception:
            log.warning("sources_only.embed_failed", exc_info=True)  # answer from term overlap instead
    lexical = _lexical_scores(question_terms, sentences, LEXICAL_HEADING_WEIGHT)
    candidates = [
        _Candidate(sentence, overlap + _prior(sentence))
        for sentence, overlap in zip(sentences, lexical, strict=True)
        if overlap > 0
    ]
    return _select(
        candidates, lambda a, b: _jaccard(a.sentence.terms, b.sentence.terms), LEXICAL_RELATIVE_FLOOR, REDUNDANT_JACCARD
    )


async def _by_meaning(
    question: str, sentences: list[Sentence], lexical: list[float], embed: SentenceEmbedder
) -> list[Sentence]:
    import numpy as np

    shortlist = sorted(range(len(sentences)), key=lambda i: -lexical[i])[:SHORTLIST]  # ties: best passage first
    leads: dict[int, int] = {}
    for index, sentence in enumerate(sentences):
        if leads.get(sentence.passage_rank, 0) < LEAD_SENTENCES:
            leads[sentence.passage_rank] = leads.get(sentence.passage_rank, 0) + 1
            if index not in shortlist:
                shortlist.append(index)
    vectors = np.asarray(await embed([question, *(sentences[i].in_context for i in shortlist)]), dtype=np.float32)
    if vectors.shape[0] != len(shortlist) + 1:
        raise ValueError(f"the embedder returned {vectors.shape[0]} rows for {len(shortlist) + 1} texts")
    rows = vectors[1:]
    cosines = rows @ vectors[0]
    similarity = rows @ rows.T
    candidates = [
        _Candidate(sentences[i], float(cosine) + LEXICAL_WEIGHT * lexical[i] + _prior(sentences[i]), row)
        for row, (i, cosine) in enumerate(zip(shortlist, cosines, strict=True))
        if lexical[i] > 0 or cosine >= COSINE_FLOOR
    ]
    return _select(candidates, lambda a, b: float(similarity[a.row, b.row]), RELATIVE_FLOOR, REDUNDANT_COSINE)


def _lexical_scores(question_terms: set[str], sentences: list[Sentence], heading_weight: float) -> list[float]:
    """Share of the question's IDF weight (over these sentences) each sentence matches, 0..1; a term
    only in the sentence's heading counts ``heading_weight`` as much."""
    total = len(sentences)
    weights: dict[str, float] = {}
    for term in question_terms:
        frequency = sum(term in sentence.matching_terms for sentence in sentences)
        if frequency:
            weights[term] = math.log(1 + total / frequency)
    whole = sum(weights.values())
    if not whole:
        return [0.0] * total
    return [
        sum(
            weight if term in sentence.terms else heading_weight * weight
            for term, weight in weights.items()
            if term in sentence.matching_terms
        )
        / whole
        for sentence in sentences
    ]


def _prior(sentence: Sentence) -> float:
    return PASSAGE_PRIOR / (1 + sentence.passage_rank)


def _select(
    candidates: list[_Candidate],
    similarity: Callable[[_Candidate, _Candidate], float],
    floor: float,
    redundant: float,
) -> list[Sentence]:
    """Maximal marginal relevance among the candidates scoring at least ``floor`` x the best, within the
    sentence and word budget, best first. Relevance is rescaled to 0..1 over that range, so that it
    weighs against similarity as MMR_LAMBDA says. A candidate at least ``redundant`` similar to one
    already chosen is a rewording of it and is skipped."""
    if not candidates:
        return []
    best = max(candidate.score for candidate in candidates)
    low = floor * best
    remaining = [candidate for candidate in candidates if candidate.score >= low]
    chosen: list[_Candidate] = []

    def marginal(candidate: _Candidate) -> float:
        overlap = max((similarity(candidate, other) for other in chosen), default=0.0)
        relevance = (candidate.score - low) / max(best - low, 1e-9)
        return MMR_LAMBDA * relevance - (1 - MMR_LAMBDA) * overlap

    words = 0
    while remaining and len(chosen) < MAX_SENTENCES:
        pick = max(remaining, key=marginal)
        remaining.remove(pick)
        if any(similarity(pick, other) >= redundant for other in chosen):
            continue  # a rewording of a sentence already quoted
        if words + pick.sentence.words > MAX_WORDS:
            continue
        chosen.append(pick)
        words += pick.sentence.words
    return [candidate.sentence for candidate in chosen]


def _jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    return len(first & second) / len(first | second) if first or second else 0.0


def terms(text: str) -> list[str]:
    return [_stem(word) for word in WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1]


def _stem(word: str) -> str:
    """A light stemmer, the same on both sides: treat/treats/treated/treating/treatment -> treat,
    flare/flares/flared -> flar, cause/causes/caused -> caus, haem-/hem-, -ise/-ize alike."""
    if len(word) > 4:
        word = word.replace("ae", "e").replace("oe", "e")
    for suffix in _SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        stem = word[: -len(suffix)]
        if suffix == "es" and not stem.endswith(("s", "x", "z", "ch", "sh")):
            continue  # flares -> flare (by "s"), but rashes -> rash
        if suffix == "s" and stem.endswith(("s", "u", "i")):
            continue  # illness, virus, arthritis
        if suffix == "ed" and stem.endswith("e"):
            continue  # need, bleed
        word = stem + _SUFFIX_REPLACEMENT.get(suffix, "")
        if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
            word = word[:-1]  # inflamm(ation) -> inflam, stopp(ed) -> stop
        break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if word.endswith("iz"):
        word = word[:-1] + "s"
    return word

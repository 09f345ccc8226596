"""From store hits to passages: which hits count, in what order, and how many per document.

- **Relevance from two signals.** A hit counts when its cosine reaches the threshold, or when it holds
  every query word the embedding model does not know (a word its WordPiece vocabulary splits into
  pieces: a drug, a gene, a code, most medical terms). Such words are what dense vectors blur, and an
  exact match on all of them is strong evidence; a hit with that evidence ranks before one without.
- **Documents, not chunk piles.** At most ``per_document`` chunks of one document are kept, and
  adjacent chunks of one document become one passage (the overlap the chunker repeats is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medchat.retrieval.passages import NearDuplicates
from medchat.retrieval.sparse import STOPWORDS, fold, stem, words
from medchat.retrieval.tokenizer import is_known_word
from medchat.retrieval.vectorstore import Hit

MIN_UNKNOWN_WORD_CHARS = 3
PROMOTED_DOCUMENTS = 1
"""Hits holding every unknown query word rank first only when they come from at most this many documents."""


@dataclass(frozen=True, slots=True)
class Candidate:
    hit: Hit
    lexical_match: bool
    """The hit holds every query word the embedding model does not know."""


@dataclass(frozen=True, slots=True)
class Span:
    """One passage to return: one chunk, or adjacent chunks of one document merged."""

    hits: tuple[Hit, ...]
    """Its chunks in document order."""
    best: Hit
    text: str


def unknown_terms(query: str) -> frozenset[str]:
    """Stemmed terms of the query's words that the embedding model's vocabulary does not hold whole."""
    found = set()
    for word in words(fold(query)):
        if word in STOPWORDS or len(word) < MIN_UNKNOWN_WORD_CHARS or word.isdigit():
            continue
        if not is_known_word(word):
            found.add(stem(word))
    return frozenset(found)


def assess(hits: Sequence[Hit], required: frozenset[str]) -> list[Candidate]:
    """Each hit with whether it holds every ``required`` term (``unknown_terms`` of the query)."""
    return [Candidate(hit, bool(required) and _holds_all(hit, required)) for hit in hits]


def judge(candidates: Sequence[Candidate], *, threshold: float) -> list[Candidate]:
    """The candidates that count, lexically confirmed ones first, each group in the store's order."""
    kept = [candidate for candidate in candidates if candidate.lexical_match or candidate.hit.dense_score >= threshold]
    matched_documents = {candidate.hit.record.document_id for candidate in kept if candidate.lexical_match}
    if len(matched_documents) > PROMOTED_DOCUMENTS:  # the terms are not specific here: the fused order stands
        return kept
    return sorted(kept, key=lambda candidate: not candidate.lexical_match)


def _holds_all(hit: Hit, required: frozenset[str]) -> bool:
    record = hit.record
    text = fold(f"{record.title}\n{record.section}\n{record.text}")
    # A stem's first letters begin every word it stems from ("allergy" <- "allergies"): only those are stemmed.
    prefixes = tuple(term[: max(3, len(term) - 1)] for term in required)
    if not all(prefix in text for prefix in prefixes):
        return False
    return required <= {stem(word) for word in words(text) if word.startswith(prefixes)}


def diverse_spans(candidates: Sequence[Candidate], *, limit: int, per_document: int) -> list[Span]:
    """Up to ``limit`` passages, best first: near-duplicates dropped, at most ``per_document`` chunks of
    one document, adjacent chunks of one document merged into one passage (ranked where its best was)."""
    groups: list[list[Hit]] = []
    kept_texts = NearDuplicates()
    per_document_count: dict[str, int] = {}
    for candidate in candidates:
        hit = candidate.hit
        document_id = hit.record.document_id
        if per_document_count.get(document_id, 0) >= per_document or not kept_texts.add(hit.record.text):
            continue
        per_document_count[document_id] = per_document_count.get(document_id, 0) + 1
        _join_group(groups, hit)
        if len(groups) == limit:
            break
    return [_span(group) for group in groups]


def _join_group(groups: list[list[Hit]], hit: Hit) -> None:
    """Add ``hit`` to the group holding an adjacent chunk of its document, else start a group after the others."""
    for group in groups:
        if group[0].record.document_id == hit.record.document_id and any(
            abs(member.record.chunk_index - hit.record.chunk_index) == 1 for member in group
        ):
            group.append(hit)
            return
    groups.append([hit])


def _span(group: list[Hit]) -> Span:
    ordered = sorted(group, key=lambda hit: hit.record.chunk_index)
    text = ordered[0].record.text
    for hit in ordered[1:]:
        text = join_overlapping(text, hit.record.text)
    return Span(hits=tuple(ordered), best=group[0], text=text)


def join_overlapping(first: str, second: str) -> str:
    """``first`` then ``second`` without the start of ``second`` that repeats the end of ``first`` (the
    chunker's overlap: whole sentences or words, so it starts and ends at a word boundary)."""
    for end in range(min(len(first), len(second)), 0, -1):
        if (end == len(second) or second[end].isspace()) and first.endswith(second[:end]):
            before = len(first) - end
            if before == 0 or first[before - 1].isspace():
                return first + second[end:]
    return first.rstrip() + "\n\n" + second.lstrip()

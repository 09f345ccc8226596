"""Post-processing of search hits: near-duplicate collapsing and query-focused snippets."""

from __future__ import annotations

import re

from medchat.retrieval.sparse import terms

NEAR_DUPLICATE_CONTAINMENT = 0.8
"""Two passages are near-duplicates when this share of the shorter one's word trigrams is in the other."""
SNIPPET_CHARS = 240

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORDS = re.compile(r"\w+", re.UNICODE)


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = _WORDS.findall(text.casefold())
    if len(words) < 3:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + 3]) for i in range(len(words) - 2))


def _near_duplicates(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    smaller = min(len(a), len(b))
    return smaller > 0 and len(a & b) / smaller >= NEAR_DUPLICATE_CONTAINMENT


class NearDuplicates:
    """Texts kept so far; ``add`` keeps a text unless it near-duplicates one already kept."""

    def __init__(self) -> None:
        self._kept: list[frozenset[tuple[str, ...]]] = []

    def add(self, text: str) -> bool:
        shingles = _shingles(text)
        if any(_near_duplicates(shingles, other) for other in self._kept):
            return False
        self._kept.append(shingles)
        return True


def snippet(text: str, query: str, *, max_chars: int = SNIPPET_CHARS) -> str:
    """The sentence sharing most terms with the query, followed by the next ones, up to ``max_chars``."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences:
        return ""
    wanted = set(terms(query))
    start = 0
    if wanted:
        overlaps = [len(wanted.intersection(terms(sentence))) for sentence in sentences]
        start = max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
    window = " ".join(sentences[start:])
    if len(window) <= max_chars:
        return ("… " if start else "") + window
    cut = window.rfind(" ", 0, max_chars)
    return ("… " if start else "") + window[: cut if cut > max_chars // 2 else max_chars].rstrip(",;: ") + " …"

"""Lexical sparse vectors for BM25-style ranking in Qdrant.

Documents carry BM25's saturated, length-normalised term frequency per term; queries carry 1.0
per distinct term. Qdrant multiplies each matching term by its IDF (the sparse vector is created
with the IDF modifier), so a dot product of the two is the BM25 score. Term indices are the first
4 bytes of BLAKE2b of the term: stable across processes and machines, unlike ``hash()``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

BM25_K1 = 1.2
BM25_B = 0.75
AVERAGE_DOCUMENT_TERMS = 90.0
"""Typical number of terms (after stopwords) in a chunk of ~220 model tokens: BM25's ``avgdl``."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

_STOPWORD_LIST = """
ll m re s t ve
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can cannot could couldn did didn do does doesn doing don down during each etc few for from
further had hadn has hasn have haven having he her here hers herself him himself his how however i if in into is
isn it its itself just let me more most much must my myself no nor not now of off on once only or other ought
our ours ourselves out over own per same she should shouldn so some such than that the their theirs them
themselves then there these they this those through thus to too under until up upon us very via was wasn we were
weren what when where whether which while who whom whose why will with within without won would wouldn yet you
your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.indices)


def fold(text: str) -> str:
    """Lowercased, accents removed."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=131_072)
def stem(word: str) -> str:
    """A light English stemmer (plural and a few inflections), conservative on short words.

    Cached: a search stems every word of the passages it shows (snippets), and words repeat."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith(("us", "ss", "is")):
        return word
    if word.endswith("s"):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Lowercased, accent-folded, lightly stemmed words without stopwords.

    Single letters stay (hepatitis B, vitamin D, Q fever), except those of contractions and possessives.
    """
    return [stem(word) for word in words(fold(text)) if word not in STOPWORDS]


def words(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=262_144)
def term_index(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def _by_index(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(tuple(index for index, _ in ordered), tuple(value for _, value in ordered))


def document_vector(text: str) -> SparseVector:
    counts = Counter(terms(text))
    length = sum(counts.values())
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / AVERAGE_DOCUMENT_TERMS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (BM25_K1 + 1) / (tf + norm)
    return _by_index(weights)


def query_vector(text: str) -> SparseVector:
    return _by_index({term_index(term): 1.0 for term in set(terms(text))})

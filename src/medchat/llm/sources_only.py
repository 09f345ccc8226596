"""The default with no language model: an extractive answer quoted from the best passages.

Sentences are scored by lexical overlap with the question (IDF-weighted over the candidate
sentences, crude suffix stemming, stopwords dropped); the best few are quoted, grouped by passage,
each group followed by its ``[n]`` citation. Nothing is generated, and the answer says so.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from medchat.llm.types import ContextPassage, GenerationDone, GenerationRequest, StreamEvent, TextDelta, Usage

SOURCES_ONLY_MODEL = "sources-only"
SOURCES_ONLY_LABEL = "Sources only — no language model configured"

QUOTED_NOTICE = "Quoted from the sources below — not a generated answer (no language model is configured)."
WEAK_MATCH_NOTICE = "The sources found do not directly address this question; the closest passages say:"
NOT_COVERED_ANSWER = (
    "Not covered: the knowledge base has nothing on this question, so there is nothing to quote. "
    "Try rephrasing it, or ask an administrator to add a source that covers it."
)

MAX_SENTENCES = 4
MAX_WORDS = 120
WORDS_PER_DELTA = 4
TITLE_WORDS = 8

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n\s*(?=[-•*]\s)")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves tell know explain please much many get also may might""".split()  # noqa: SIM905
)


class SourcesOnlyProvider:
    kind: Literal["sources-only"] = "sources-only"
    model = SOURCES_ONLY_MODEL
    label = SOURCES_ONLY_LABEL

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Streams word groups so the UI path is the same as for a model; usage is zero (no model ran)."""
        answer = extractive_answer(request.question, request.passages)
        for piece in _word_groups(answer, size=WORDS_PER_DELTA):
            yield TextDelta(piece)
            await asyncio.sleep(0)
        yield GenerationDone(model=SOURCES_ONLY_MODEL, usage=Usage(0, 0), finish_reason="stop")

    async def complete(self, prompt: str, *, max_tokens: int = 32) -> str:
        """A title-like heuristic: the first words of the prompt's last non-empty line.

        Callers put the text to summarise last (e.g. ``"Title for this question:\\n<question>"``).
        """
        lines = [line.strip() for line in prompt.splitlines() if line.strip()]
        if not lines:
            return ""
        last = re.sub(r"^[\w ]{1,30}:\s+", "", lines[-1])
        words = last.split()[: min(TITLE_WORDS, max_tokens)]
        return " ".join(words).rstrip(".,;:!?")

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage_rank: int
    position: int
    passage_number: int
    text: str
    terms: frozenset[str]


def extractive_answer(question: str, passages: Sequence[ContextPassage]) -> str:
    if not passages:
        return NOT_COVERED_ANSWER
    sentences = [
        _Sentence(rank, position, passage.number, text, frozenset(_terms(text)))
        for rank, passage in enumerate(passages)
        for position, text in enumerate(split_sentences(passage.text))
    ]
    if not sentences:
        return NOT_COVERED_ANSWER
    chosen = _best_sentences(set(_terms(question)), sentences)
    notice = QUOTED_NOTICE
    if not chosen:
        notice = f"{QUOTED_NOTICE}\n\n{WEAK_MATCH_NOTICE}"
        chosen = [sentence for sentence in sentences if sentence.position == 0][:2]
    return notice + "\n\n" + "\n".join(_quote_by_passage(chosen))


def split_sentences(text: str) -> list[str]:
    pieces = (" ".join(piece.split()).lstrip("-•* ") for piece in _SENTENCE_END.split(text))
    return [piece for piece in pieces if piece]


def _best_sentences(question_terms: set[str], sentences: list[_Sentence]) -> list[_Sentence]:
    if not question_terms:
        return []
    document_frequency = {term: sum(term in s.terms for s in sentences) for term in question_terms}
    total = len(sentences)

    def score(sentence: _Sentence) -> float:
        matched = question_terms & sentence.terms
        if not matched:
            return 0.0
        weight = sum(math.log(1 + total / document_frequency[term]) for term in matched)
        return weight / math.log(2 + len(sentence.terms)) + 0.05 / (1 + sentence.passage_rank)

    ranked = sorted(((score(s), s) for s in sentences), key=lambda pair: pair[0], reverse=True)
    chosen: list[_Sentence] = []
    seen: set[str] = set()  # overlapping chunks repeat sentences
    words = 0
    for value, sentence in ranked:
        if value <= 0 or len(chosen) == MAX_SENTENCES:
            break
        length = len(sentence.text.split())
        if sentence.text.lower() in seen or (chosen and words + length > MAX_WORDS):
            continue
        chosen.append(sentence)
        seen.add(sentence.text.lower())
        words += length
    return chosen


def _quote_by_passage(sentences: list[_Sentence]) -> list[str]:
    by_passage: dict[tuple[int, int], list[_Sentence]] = {}
    for sentence in sorted(sentences, key=lambda s: (s.passage_rank, s.position)):
        by_passage.setdefault((sentence.passage_rank, sentence.passage_number), []).append(sentence)
    return [
        "- " + " ".join(sentence.text for sentence in group) + f" [{number}]"
        for (_rank, number), group in by_passage.items()
    ]


def _terms(text: str) -> list[str]:
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1]


def _stem(word: str) -> str:
    """Crude, but the same on both sides: raise/raised/raising/raises -> rais."""
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _word_groups(text: str, *, size: int) -> list[str]:
    """Pieces of ``text`` of about ``size`` words that join back to exactly ``text``."""
    tokens = re.findall(r"\s*\S+", text)
    return ["".join(tokens[start : start + size]) for start in range(0, len(tokens), size)]

"""The default with no language model: an extractive answer quoted from the best passages.

The passages' sentences are scored against the question and the best few picked (see
``medchat.llm.extractive``), then quoted best first, one bullet each, each with its passage's ``[n]``.
Nothing is generated, and the answer says so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from medchat.llm.extractive.scoring import SentenceEmbedder, best_sentences
from medchat.llm.extractive.sentences import Sentence, quotable_sentences, split_sentences
from medchat.llm.observed import observed
from medchat.llm.types import ContextPassage, GenerationDone, GenerationRequest, StreamEvent, TextDelta, Usage

__all__ = [
    "NOT_COVERED_ANSWER",
    "QUOTED_NOTICE",
    "SOURCES_ONLY_LABEL",
    "SOURCES_ONLY_MODEL",
    "WEAK_MATCH_NOTICE",
    "SentenceEmbedder",
    "SourcesOnlyProvider",
    "extractive_answer",
    "split_sentences",
]

SOURCES_ONLY_MODEL = "sources-only"
SOURCES_ONLY_LABEL = "Sources only — no language model configured"

QUOTED_NOTICE = "Quoted from the sources below — not a generated answer (no language model is configured)."
WEAK_MATCH_NOTICE = "The sources found do not directly address this question; the closest passages say:"
NOT_COVERED_ANSWER = (
    "Not covered: the knowledge base has nothing on this question, so there is nothing to quote. "
    "Try rephrasing it, or ask an administrator to add a source that covers it."
)


WORDS_PER_DELTA = 4
TITLE_WORDS = 8


@observed
class SourcesOnlyProvider:
    kind: Literal["sources-only"] = "sources-only"
    model = SOURCES_ONLY_MODEL
    label = SOURCES_ONLY_LABEL

    def __init__(self, embed: SentenceEmbedder | None = None, *, label: str | None = None) -> None:
        """``label``: the human name instead of ``SOURCES_ONLY_LABEL`` (when a model is configured besides)."""
        self._embed = embed
        if label is not None:
            self.label = label

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Streams word groups so the UI path is the same as for a model; usage is zero (no model ran)."""
        answer = await extractive_answer(request.question, request.passages, embed=self._embed)
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


async def extractive_answer(
    question: str, passages: Sequence[ContextPassage], *, embed: SentenceEmbedder | None = None
) -> str:
    """The notice and up to ``MAX_SENTENCES`` quoted sentences, best first, one ``- text [n]`` bullet each.

    ``embed`` scores sentences by meaning as well as shared terms; without it (or if it fails) term
    overlap alone decides.
    """
    if not passages:
        return NOT_COVERED_ANSWER
    sentences = quotable_sentences(passages)
    if not sentences:
        return NOT_COVERED_ANSWER
    chosen = await best_sentences(question, sentences, embed)
    notice = QUOTED_NOTICE
    if not chosen:
        notice = f"{QUOTED_NOTICE}\n\n{WEAK_MATCH_NOTICE}"
        chosen = _leads(sentences, passages=2)
    return notice + "\n\n" + "\n".join(_bullets(chosen))


def _leads(sentences: list[Sentence], *, passages: int) -> list[Sentence]:
    """The first quotable sentence of each of the first ``passages`` passages that has one."""
    firsts: dict[int, Sentence] = {}
    for sentence in sentences:
        firsts.setdefault(sentence.passage_rank, sentence)
    return list(firsts.values())[:passages]


def _bullets(sentences: list[Sentence]) -> list[str]:
    """One ``- text [n]`` per sentence, in the given order; a run of sentences that follow each other in
    one passage shares a bullet (in text order)."""
    groups: list[list[Sentence]] = []
    for sentence in sentences:
        group = groups[-1] if groups else None
        if (
            group is not None
            and group[0].passage_rank == sentence.passage_rank
            and sentence.position in (group[0].position - 1, group[-1].position + 1)
        ):
            group.append(sentence)
            group.sort(key=lambda s: s.position)
        else:
            groups.append([sentence])
    return ["- " + " ".join(s.text for s in group) + f" [{group[0].passage_number}]" for group in groups]


def _word_groups(text: str, *, size: int) -> list[str]:
    """Pieces of ``text`` of about ``size`` words that join back to exactly ``text``."""
    tokens = re.findall(r"\s*\S+", text)
    return ["".join(tokens[start : start + size]) for start in range(0, len(tokens), size)]

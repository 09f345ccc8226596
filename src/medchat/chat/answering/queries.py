"""The search query of a question: a follow-up ("and how is it treated?") is made standalone first.

A follow-up names no topic of its own: it points back with a pronoun ("it", "they", "this"), or asks
only about a generic aspect ("and the treatment?", "what about children?"). One that names a new topic
("and what about gout?") stands alone.
Without a model, the topic words of the thread's latest question that had some are put in front of
it (``standalone_query``: "Gout: and how is it treated?"). With a model, one short call rewrites it
(``rewrite_with_model``), and the deterministic query is what remains when that call fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import structlog

from medchat.chat.answering.ports import SafetyChecks
from medchat.llm import LLMProvider

log = structlog.get_logger(__name__)

REWRITE_PROMPT = (
    "Rewrite the last question so it can be understood without the conversation: name what it refers "
    "to, keep its meaning, add nothing else. Answer with the rewritten question only.\n\n"
    "Earlier questions:\n{earlier}\n\nLast question: {question}"
)
REWRITE_MAX_TOKENS = 48
EARLIER_QUESTIONS_SHOWN = 3
TOPIC_WORDS = 6

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_POINTERS = _word_set(
    "it its it's itself this that these those they them their theirs he she him her his hers one ones such same there"
)
_FUNCTION_WORDS = _word_set(
    """a about above after again against all also am an and any anything are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down during each else
    even ever every few for from further get gets getting got had hadn has hasn have haven having here how however
    i if in into is isn just let lot lots me might mine more most much must my myself no nor not now of off
    ok okay on once only or other our ours out over own please really same should shouldn so some something
    such than thank thanks the then there these thing things those though through to too under until up upon us
    very was wasn way we well were weren what whats when where whether which while who whom whose why will with
    within without would wouldn yes yet you your yours"""
)
_ASPECT_WORDS = _word_set(
    """adult adults advice affect affected age aged baby babies better best cause caused causes causing chance
    change check child children common complication complications condition cure cured cures danger dangerous
    diagnose diagnosed diagnosis diet disease do doctor dose doses dosage drug drugs effect effects elderly
    exercise expect feel find genetic happen happens help helps inherited kid kids know last lasts life live
    long look manage management mean means medication medications medicine medicines men need needs normal
    older outlook pain people person pregnancy pregnant prevent prevented prevention problem problems prognosis
    risk risks safe serious side sign signs start stop symptom symptoms take taking test tests therapy think
    treat treated treating treatment treatments type types usually want women work works worse worry year years"""
)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    """What is searched: the question itself, or its standalone form."""
    method: Literal["terms", "model"] | None = None
    """How a follow-up was made standalone: ``"terms"`` (deterministic) or ``"model"``; None: as asked."""
    model: str | None = None
    ms: float | None = None


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def topic_words(question: str) -> list[str]:
    """The words naming what a question is about, as written, in order (no question or aspect words)."""
    seen: set[str] = set()
    kept: list[str] = []
    for word in _words(question):
        folded = word.casefold()
        if folded in _FUNCTION_WORDS or folded in _POINTERS or folded in _ASPECT_WORDS or folded in seen:
            continue
        if len(folded) < 2 and not word.isupper():
            continue
        seen.add(folded)
        kept.append(word)
    return kept[:TOPIC_WORDS]


def is_follow_up(question: str) -> bool:
    """True when the question leans on the conversation for its topic."""
    words = [word.casefold() for word in _words(question)]
    if not words:
        return False
    return any(word in _POINTERS for word in words) or not topic_words(question)


def thread_topic(earlier_questions: Sequence[str]) -> list[str]:
    """The topic words of the newest earlier question that names one (follow-ups carry no topic)."""
    for earlier in reversed(earlier_questions):
        words = topic_words(earlier)
        if words:
            return words
    return []


def standalone_query(question: str, earlier_questions: Sequence[str]) -> str:
    """The question as a search query: unchanged when it stands alone, else prefixed with the thread's topic."""
    question = " ".join(question.split())
    if not earlier_questions or not is_follow_up(question):
        return question
    topic = [word for word in thread_topic(earlier_questions) if word.casefold() not in question.casefold()]
    return f"{' '.join(topic)}: {question}" if topic else question


async def search_query(
    question: str,
    earlier_questions: Sequence[str],
    *,
    provider: LLMProvider | None,
    safety: SafetyChecks,
    redact: bool,
) -> SearchQuery:
    """The query to search for ``question``: as asked, or made standalone (by ``provider`` when given)."""
    deterministic = standalone_query(question, earlier_questions)
    if deterministic == " ".join(question.split()):
        return SearchQuery(question)
    if provider is None:
        return SearchQuery(deterministic, method="terms")
    started = time.perf_counter()
    rewritten = await rewrite_with_model(question, earlier_questions, provider=provider, safety=safety, redact=redact)
    ms = round((time.perf_counter() - started) * 1000, 2)
    if not rewritten:
        return SearchQuery(deterministic, method="terms", ms=ms)
    return SearchQuery(rewritten, method="model", model=provider.model, ms=ms)


async def rewrite_with_model(
    question: str, earlier_questions: Sequence[str], *, provider: LLMProvider, safety: SafetyChecks, redact: bool
) -> str:
    """One short model call; ``""`` when it fails or answers nothing usable. With ``redact`` the model sees
    the questions redacted (and the rewrite is restored before it is searched)."""
    redaction = safety.redaction() if redact else None

    def shown(text: str) -> str:
        return redaction.redact(text) if redaction else text

    earlier = "\n".join(f"- {shown(text)}" for text in earlier_questions[-EARLIER_QUESTIONS_SHOWN:])
    prompt = REWRITE_PROMPT.format(earlier=earlier, question=shown(question))
    try:
        rewritten = await provider.complete(prompt, max_tokens=REWRITE_MAX_TOKENS)
        if redaction is not None:
            rewritten = "".join(redaction.restore_stream().restore_all(iter([rewritten])))
    except Exception as error:  # noqa: BLE001 - the deterministic query stands in; a rewrite never fails a turn
        log.info("question rewrite failed; searching the deterministic query", error=str(error))
        return ""
    rewritten = " ".join(rewritten.split()).strip("\"'“”")
    return rewritten if 0 < len(rewritten) <= 4 * max(len(question), 80) else ""

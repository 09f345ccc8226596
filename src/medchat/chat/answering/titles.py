"""Conversation titles: the question's first words at once, then (with a model) a model-written one."""

from __future__ import annotations

import re

import structlog

from medchat.chat.answering.ports import SafetyChecks
from medchat.chat.models import DEFAULT_TITLE, Conversation, set_fields
from medchat.chat.services import clean_title
from medchat.llm import LLMProvider

log = structlog.get_logger(__name__)

TITLE_PROMPT = (
    "Write a short title, at most six words, for a conversation that starts with the question below. "
    "Answer with the title only, no quotes.\n\nQuestion: {question}"
)
HEURISTIC_TITLE_WORDS = 8

_LINE_MARKS = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d{1,3}[.)]\s+)+")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_EMPHASIS = re.compile(r"\*+|`+|~~|(?<!\w)_+|_+(?!\w)")
_DANGLING = re.compile(r"[\s:;,\-\u2013\u2014+#>]+(?=\u2026?$)")


def plain_title(text: str) -> str:
    """``text`` without Markdown: no emphasis marks, list or heading markers, link targets or code ticks, and
    no dangling punctuation at the end (``"Gout** usually causes: - …"`` becomes ``"Gout usually causes…"``)."""
    lines = (_LINE_MARKS.sub("", line) for line in text.splitlines())
    plain = " ".join(line.strip() for line in lines if line.strip())
    plain = _EMPHASIS.sub("", _LINK.sub(r"\1", plain))
    return _DANGLING.sub("", " ".join(plain.split()))


def heuristic_title(question: str) -> str:
    """The question's first words, trimmed: the title until (or instead of) a model-written one."""
    words = " ".join(plain_title(question).split()).split(" ")
    title = " ".join(words[:HEURISTIC_TITLE_WORDS])
    if len(words) > HEURISTIC_TITLE_WORDS:
        title = title.rstrip(".,;:!?") + "…"
    return clean_title(title) or DEFAULT_TITLE


async def write_model_title(
    conversation: Conversation, question: str, *, provider: LLMProvider, safety: SafetyChecks, redact: bool
) -> None:
    """The model's title for a new conversation; with ``redact`` it sees the question redacted.

    Never fails the turn: on any error the heuristic title stays. A title the user set meanwhile wins.
    """
    redaction = safety.redaction() if redact else None
    prompt = TITLE_PROMPT.format(question=redaction.redact(question) if redaction else question)
    try:
        title = await provider.complete(prompt, max_tokens=16)
        if redaction is not None:
            title = "".join(redaction.restore_stream().restore_all(iter([title])))
        title = clean_title(plain_title(title))
    except Exception as error:  # noqa: BLE001 - the heuristic title stays; titles never fail a turn
        log.info("title generation failed; keeping the heuristic title", error=str(error))
        return
    if title:
        await set_fields(
            Conversation,
            {"_id": conversation.id, "title_source": {"$in": ["default", "heuristic"]}},
            {"title": title, "title_source": "model"},
        )

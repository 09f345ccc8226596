"""Turn a ``GenerationRequest`` into chat messages that fit the prompt token budget.

Order: one system message (instructions, then the numbered sources), as much history as fits
(newest kept), then the question. Passages take priority over history: grounding matters more than
memory of the conversation.

Token counts are estimates, not a tokenizer: about four characters per token plus a few tokens per
message (``langchain_core``'s ``count_tokens_approximately``, also used by ``trim_messages``). That is
close for English with GPT-style tokenizers and cheap enough for every request; keep
``llm_context_tokens`` well under the model's real window to absorb the error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    convert_to_openai_messages,
    trim_messages,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from medchat.llm.types import ChatTurn, ContextPassage, GenerationRequest

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 3
MIN_PASSAGE_TOKENS = 48
"""A passage cut shorter than this is left out rather than quoted as a fragment."""

DEFAULT_SYSTEM_PROMPT = """\
You are medchat, an assistant that answers medical questions using only the organisation's curated \
sources, which are given to you below as numbered passages.

Rules:
- Answer only from the numbered passages. Do not add facts from memory or outside knowledge.
- Cite the passages you use with their numbers in square brackets, like [1] or [2][3], right after \
the statement they support. Cite only numbers listed below; never invent sources, titles, authors, \
studies, doses or figures.
- If the passages do not cover the question, or cover only part of it, say so plainly (for example \
"The available sources do not cover this.") instead of guessing.
- You inform; you do not diagnose or prescribe. For decisions about a particular person, advise \
talking to a qualified clinician. If the question describes possible emergency symptoms, advise \
contacting emergency services now.
- Be clear and concise, in plain language, in the language of the question."""

COMPACT_SYSTEM_PROMPT = (
    "You answer medical questions using only the numbered sources below. Cite the sources you use like [1]. "
    "If the sources do not answer the question, say that they do not cover it. Give general information, "
    "not a diagnosis; for personal decisions, advise seeing a clinician."
)
"""The same rules in a quarter of the tokens, for small local models (slow prompt processing, short memory)."""

NO_SOURCES_NOTE = "Sources: none were found for this question. Say plainly that the available sources do not cover it."

_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "{instructions}\n\n{sources}"),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def build_prompt(
    request: GenerationRequest, *, context_tokens: int, default_system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> list[BaseMessage]:
    """The messages for ``request`` within ``context_tokens`` (estimated; see the module docstring)."""
    instructions = request.system_prompt or default_system_prompt
    fixed = estimate_tokens(instructions) + estimate_tokens(request.question) + 3 * TOKENS_PER_MESSAGE
    sources = format_sources(request.passages, budget_tokens=context_tokens - fixed)
    history_budget = context_tokens - fixed - estimate_tokens(sources)
    return _PROMPT.format_messages(
        instructions=instructions,
        sources=sources,
        history=fit_history(request.history, budget_tokens=history_budget),
        question=request.question,
    )


def format_sources(passages: Sequence[ContextPassage], *, budget_tokens: int) -> str:
    """The numbered sources block; passages that do not fit are left out, the first one is cut to fit."""
    if not passages:
        return NO_SOURCES_NOTE
    lines = ["Sources:"]
    remaining = budget_tokens - estimate_tokens(lines[0])
    for passage in passages:
        line = format_passage(passage)
        cost = estimate_tokens(line) + 1
        if cost <= remaining:
            lines.append(line)
            remaining -= cost
        elif len(lines) == 1 and remaining >= MIN_PASSAGE_TOKENS:
            lines.append(line[: int(remaining * CHARS_PER_TOKEN) - 2].rstrip() + " …")
            remaining = 0
    if len(lines) == 1:
        return NO_SOURCES_NOTE
    return "\n\n".join(lines)


def format_passage(passage: ContextPassage) -> str:
    where = f"{passage.title}, page {passage.page}" if passage.page is not None else passage.title
    text = " ".join(passage.text.split())
    return f"[{passage.number}] {where}: {text}"


def fit_history(history: Iterable[ChatTurn], *, budget_tokens: int) -> list[BaseMessage]:
    """The newest turns that fit ``budget_tokens``, starting on a user turn."""
    messages: list[BaseMessage] = [
        HumanMessage(turn.content) if turn.role == "user" else AIMessage(turn.content) for turn in history
    ]
    if not messages or budget_tokens <= 0:
        return []
    return trim_messages(
        messages,
        max_tokens=budget_tokens,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on="human",
    )


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return convert_to_openai_messages(list(messages))


def estimate_prompt_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Estimated prompt size of OpenAI-style message dicts, for when a server reports no usage."""
    return sum(estimate_tokens(str(message.get("content") or "")) + TOKENS_PER_MESSAGE for message in messages)

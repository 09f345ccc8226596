"""What the answer pipeline needs from outside: the caller, the passage search and the safety checks.

``medchat.auth.Principal``, the runtime's passage search and ``medchat.chat.safety.RuleBasedSafety``
satisfy these; tests and other deployments can plug in their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from medchat.chat.models import Safety
from medchat.chat.safety import StreamRestorer


class Caller(Protocol):
    """Who asks: ``medchat.auth.Principal`` satisfies this."""

    @property
    def id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


class PassageLike(Protocol):
    """What ``medchat.retrieval.Passage`` offers and the pipeline reads."""

    document_id: str
    title: str
    page: int | None
    section: str
    text: str
    snippet: str
    score: float
    chunk_id: str


PassageSearch = Callable[..., Awaitable[Sequence[PassageLike]]]
"""``await search(query, user_id=..., is_admin=...)``: passages the caller may see, best first."""


async def no_passages(query: str, *, user_id: str, is_admin: bool) -> list[PassageLike]:
    """The search used until retrieval is wired in: nothing is found, answers say so."""
    return []


class LLMRedaction(Protocol):
    """Reversible redaction for one turn: ``medchat.chat.safety.PhiRedactor`` satisfies this."""

    def redact(self, text: str) -> str: ...

    def restore_stream(self) -> StreamRestorer: ...


class SafetyChecks(Protocol):
    """Triage and scope before answering, citation checks after, PHI kept out of the model's input."""

    def assess(self, text: str) -> Safety: ...

    def scope_message(self, topic: str) -> str: ...

    def check_answer(self, text: str, *, passage_count: int) -> str: ...

    def redaction(self) -> LLMRedaction: ...

"""The data that crosses the ``llm`` boundary, and the provider interface."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

ProviderKind = Literal["remote", "sources-only", "local"]


@dataclass(frozen=True, slots=True)
class ContextPassage:
    """A retrieved passage; ``number`` is what the answer cites as ``[number]``."""

    number: int
    title: str
    page: int | None
    text: str


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One question to answer. ``history`` is oldest first and excludes ``question`` itself.

    ``system_prompt=None`` means the module's grounded medical prompt (``DEFAULT_SYSTEM_PROMPT``).
    """

    question: str
    history: Sequence[ChatTurn] = field(default_factory=tuple)
    passages: Sequence[ContextPassage] = field(default_factory=tuple)
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "passages", tuple(self.passages))


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class GenerationDone:
    """The last event of every stream. ``model`` is the model that actually answered."""

    model: str
    usage: Usage
    finish_reason: str | None


StreamEvent = TextDelta | GenerationDone


@runtime_checkable
class LLMProvider(Protocol):
    """Text generation, whatever runs it.

    ``model`` is the label stored with each answer (the remote model id, ``"sources-only"`` or the
    local model's name); ``label`` is human text for the UI.
    """

    kind: ProviderKind
    model: str
    label: str

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Use as ``async for event in provider.stream(request)``; ends with exactly one ``GenerationDone``.

        Raises ``LLMUnavailable`` (or a subclass) before the first ``TextDelta``, or
        ``LLMStreamInterrupted`` with the partial text after it.
        """
        ...

    async def complete(self, prompt: str, *, max_tokens: int = 32) -> str:
        """A short, non-streamed answer to ``prompt`` (conversation titles); may be a heuristic."""
        ...

    async def ping(self) -> bool:
        """Cheap readiness probe that spends no tokens and never raises."""
        ...

    async def aclose(self) -> None: ...

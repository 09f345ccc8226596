"""OpenAI's chat-completion shapes, as much of them as ``/v1`` reads and writes, plus the ``medchat`` extension.

Requests keep unknown fields (OpenAI's SDKs send parameters medchat has no use for); which declared ones
are honoured is said field by field and in docs/api-extensions.md.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class ContentPart(msgspec.Struct, kw_only=True):
    type: str
    """Only ``text`` parts are read; any other type answers 400."""
    text: str | None = None


class ChatMessageIn(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    """Ignored."""


class ChatCompletionRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[ChatMessageIn]
    """The last must be a ``user`` message: the question. Earlier ``user``/``assistant`` messages are the
    conversation (used when no stored conversation is continued); ``system``/``developer``/``tool`` are ignored."""
    stream: bool = False
    n: int | None = None
    """Only 1 (or unset): one answer per question."""
    temperature: float | None = None
    """Ignored (and the next ones): the grounding policy fixes how answers are written."""
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    user: str | None = None
    stream_options: dict[str, Any] | None = None
    """Ignored: the last chunk always carries ``usage``."""


class ModelOut(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class SourceRef(msgspec.Struct, kw_only=True):
    n: int
    """The number the answer cites it with, ``[n]``."""
    document_id: str
    title: str
    page: int | None
    url: str
    """The original document (needs the medchat session of its owner, or an admin's, to open)."""
    text: str
    """The passage the answer was given."""


class MedchatExtension(msgspec.Struct, kw_only=True):
    conversation_id: str
    message_id: str
    sources: list[SourceRef]
    notices: list[str]
    """The emergency notice when triage flagged the question (it also leads the answer text)."""
    grounded: bool | None = None
    """Whether the answer cites the sources; null in chunks before the last."""


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(msgspec.Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    medchat: MedchatExtension


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    """On the last chunk only."""
    medchat: MedchatExtension | None = None
    """On the last chunk only, with the sources."""


class ErrorBody(msgspec.Struct, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(msgspec.Struct, kw_only=True):
    """OpenAI's error object: every ``/v1`` failure, and a stream's last event when the answer fails."""

    error: ErrorBody

"""The answer pipeline's events as OpenAI objects: the whole ``chat.completion``, or its stream of
``chat.completion.chunk`` events; and the OpenAI request's messages as the pipeline's question and history.

The answer text is the emergency notice (when triage flagged the question), the answer with its ``[n]``
markers, then a "Sources" list with an absolute link to each original document.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import msgspec

from medchat.chat.answering import AnswerEvent, Failed, Finished, Meta, SourcesFound, Token
from medchat.chat.openai_compat.errors import error_out
from medchat.chat.openai_compat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessageIn,
    Choice,
    ChunkChoice,
    Delta,
    MedchatExtension,
    SourceRef,
    Usage,
)
from medchat.chat.schemas import MessageOut, SourceOut
from medchat.llm import ChatTurn
from medchat.platform.errors import ValidationFailed

DONE = "data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Asked:
    question: str
    prior: list[ChatTurn]
    """The ``user`` and ``assistant`` messages before the question, in order."""


def asked(messages: list[ChatMessageIn]) -> Asked:
    """The question (the last message, which must be the user's) and the conversation before it."""
    if not messages or messages[-1].role != "user":
        raise ValidationFailed("messages: the last message must be a user message (the question)", param="messages")
    prior = [
        ChatTurn(message.role, text_of(message))
        for message in messages[:-1]
        if message.role in ("user", "assistant") and text_of(message)
    ]
    return Asked(question=text_of(messages[-1]), prior=prior)


def text_of(message: ChatMessageIn) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for part in message.content:
        if part.type != "text":
            raise ValidationFailed(f"messages: content parts of type '{part.type}' are not supported (text only)")
        texts.append(part.text or "")
    return "\n".join(texts)


@dataclass(frozen=True, slots=True)
class Completion:
    """What every object of one answer shares: its id, creation time, model name and the links' base URL."""

    model: str
    base_url: str
    conversation_id: str
    message_id: str
    created: int = 0

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.message_id}"

    def source_refs(self, sources: list[SourceOut]) -> list[SourceRef]:
        return [
            SourceRef(
                n=source.number,
                document_id=source.document_id,
                title=source.title,
                page=source.page,
                url=f"{self.base_url}/documents/{source.document_id}/file",
                text=source.text,
            )
            for source in sources
        ]

    def sources_text(self, sources: list[SourceOut]) -> str:
        """``\\n\\nSources:\\n[n] Title, p. X — <link>`` per source; empty without sources."""
        if not sources:
            return ""
        lines = [
            f"[{ref.n}] {ref.title}{f', p. {ref.page}' if ref.page is not None else ''} — {ref.url}"
            for ref in self.source_refs(sources)
        ]
        return "\n\nSources:\n" + "\n".join(lines)

    def extension(self, message: MessageOut, *, grounded: bool | None) -> MedchatExtension:
        return MedchatExtension(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            sources=self.source_refs(message.sources),
            notices=notices(message),
            grounded=grounded,
        )

    def completion(self, message: MessageOut) -> ChatCompletion:
        """The finished answer as one ``chat.completion``."""
        text = lead(message) + message.content + self.sources_text(message.sources)
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[Choice(message=AssistantMessage(content=text))],
            usage=usage_of(message),
            medchat=self.extension(message, grounded=message.grounded),
        )

    def chunk(
        self,
        delta: Delta,
        *,
        finish_reason: Literal["stop"] | None = None,
        usage: Usage | None = None,
        medchat: MedchatExtension | None = None,
    ) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish_reason)
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[choice], usage=usage, medchat=medchat
        )
        return data(chunk)

    async def chunks(self, events: AsyncIterator[AnswerEvent]) -> AsyncIterator[str]:
        """The answer as Server-Sent Events: the role, the notice, the text, the Sources list, a last chunk
        with ``finish_reason``, ``usage`` and the ``medchat`` extension, then ``[DONE]``. A failed answer
        ends with an OpenAI error object instead (OpenAI's SDKs raise it) and no ``[DONE]``."""
        async for event in events:
            if isinstance(event, Meta):
                yield self.chunk(Delta(role="assistant", content=""))
                if notice := lead(event.message):
                    yield self.chunk(Delta(content=notice))
            elif isinstance(event, Token):
                yield self.chunk(Delta(content=event.text))
            elif isinstance(event, SourcesFound):
                continue  # listed after the answer, from the stored message
            elif isinstance(event, Finished):
                if sources := self.sources_text(event.message.sources):
                    yield self.chunk(Delta(content=sources))
                extension = self.extension(event.message, grounded=event.message.grounded)
                yield self.chunk(Delta(), finish_reason="stop", usage=usage_of(event.message), medchat=extension)
                yield DONE
            elif isinstance(event, Failed):
                yield data(error_out(event.error))


def lead(message: MessageOut) -> str:
    """The emergency notice, as the first paragraph of the answer text ("" when there is none)."""
    return f"{message.safety.notice}\n\n" if message.safety.emergency and message.safety.notice else ""


def notices(message: MessageOut) -> list[str]:
    return [message.safety.notice] if message.safety.emergency and message.safety.notice else []


def usage_of(message: MessageOut) -> Usage:
    prompt, completion = (message.usage.prompt_tokens, message.usage.completion_tokens) if message.usage else (0, 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def data(value: object) -> str:
    return f"data: {msgspec.json.encode(value).decode()}\n\n"


def now() -> int:
    return int(time.time())

"""What an answer run tells its subscribers, in order: ``Meta``, ``SourcesFound``, ``Token``..., then
``Finished`` or ``Failed``; and ``AnswerRun``, which keeps them so that late subscribers see them all.

A failed answer is one ``AnswerFailed`` error (``Failed.error``): the JSON route raises it, the SSE
streams send its ``to_problem()``, so every client gets the same problem+json for the same failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from medchat.chat.answering.turns import PreparedTurn
from medchat.chat.limits import Budgets
from medchat.chat.models import Message, MessageError
from medchat.chat.schemas import ConversationOut, MessageOut, SourceOut, conversation_out, message_out
from medchat.platform.errors import AppError, DependencyUnavailable, ServerError

STOPPED_DETAIL = "You stopped this answer before it finished."
_TITLES = {
    "llm_unavailable": "The language model is unavailable",
    "stopped": "The answer was stopped",
    "interrupted": "The answer was interrupted",
    "internal_error": "Internal error",
}


class AnswerFailed(AppError):
    """A failed answer as clients see it: the stored error, and the ids to retry with.

    ``code`` and ``detail`` are the stored error's; ``status`` is the cause's (503 when the model failed
    or the answer was stopped, 500 for an internal error); ``Retry-After`` goes out when the cause gave one.
    """

    def __init__(
        self,
        error: MessageError,
        *,
        conversation_id: str,
        user_message_id: str | None,
        message_id: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = error.code  # type: ignore[misc]
        self.title = _TITLES.get(error.code, "The answer could not be completed")  # type: ignore[misc]
        self.status = status or _status_of(error.code)  # type: ignore[misc]
        self.error = error
        self.conversation_id, self.user_message_id, self.message_id = conversation_id, user_message_id, message_id
        retry_after = {"retry_after": error.retry_after} if error.retry_after else {}
        retry_header = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        super().__init__(
            error.detail,
            headers={**retry_header, **(headers or {})},
            reason=error.reason,
            conversation_id=conversation_id,
            user_message_id=user_message_id,
            message_id=message_id,
            retry={"conversation_id": conversation_id, "parent_id": user_message_id},
            **retry_after,
        )

    @classmethod
    def of(cls, message: Message, *, status: int | None = None) -> AnswerFailed:
        """The failure of a failed answer (one never finished counts as stopped)."""
        return cls(
            message.error or MessageError(code="interrupted", detail=STOPPED_DETAIL),
            conversation_id=message.conversation_id,
            user_message_id=message.parent_id,
            message_id=str(message.id),
            status=status,
        )

    def with_headers(self, headers: dict[str, str]) -> AnswerFailed:
        """The same failure with more response headers (a route's rate-limit headers)."""
        return AnswerFailed(
            self.error,
            conversation_id=self.conversation_id,
            user_message_id=self.user_message_id,
            message_id=self.message_id,
            status=self.status,
            headers={**self.headers, **headers},
        )


def _status_of(code: str) -> int:
    """A stored failure's status: 500 for an internal error, else 503 (a model or an answer that can be retried)."""
    return ServerError.status if code == ServerError.code else DependencyUnavailable.status


@dataclass(frozen=True, slots=True)
class Meta:
    conversation: ConversationOut
    user_message: MessageOut
    message: MessageOut
    created_conversation: bool


@dataclass(frozen=True, slots=True)
class SourcesFound:
    message_id: str
    sources: list[SourceOut]


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    message: MessageOut


@dataclass(frozen=True, slots=True)
class Failed:
    message: MessageOut
    error: AnswerFailed


AnswerEvent = Meta | SourcesFound | Token | Finished | Failed
TERMINAL = (Finished, Failed)


class AnswerRun:
    """One answer being written; keeps its events so late subscribers see them all, in order.

    Handlers read its frozen events (``meta``, ``events``, ``wait()``, ``subscribe()``) and ``budgets``;
    ``turn`` is the pipeline's own state (the stored documents it finishes).
    """

    def __init__(self, turn: PreparedTurn) -> None:
        self.turn = turn
        meta = Meta(
            conversation=conversation_out(turn.conversation),
            user_message=message_out(turn.user_message),
            message=message_out(turn.assistant, siblings=turn.siblings),
            created_conversation=turn.created_conversation,
        )
        self.events: list[AnswerEvent] = [meta]
        self._queues: list[asyncio.Queue[AnswerEvent]] = []
        self.task: asyncio.Task[None] | None = None
        self.cancel_detail = STOPPED_DETAIL
        self.cancel_code = "stopped"

    @property
    def message_id(self) -> str:
        return str(self.turn.assistant.id)

    @property
    def meta(self) -> Meta:
        """The run's first event: the conversation, the question and the answer as they were stored."""
        meta = self.events[0]
        assert isinstance(meta, Meta)
        return meta

    @property
    def budgets(self) -> Budgets | None:
        """The caller's budgets after this question was counted (None without limits)."""
        return self.turn.budgets

    @property
    def finished(self) -> bool:
        return isinstance(self.events[-1], TERMINAL)

    def publish(self, event: AnswerEvent) -> None:
        self.events.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[AnswerEvent]:
        """Every event from the first, then new ones as they come, until ``Finished`` or ``Failed``."""
        queue: asyncio.Queue[AnswerEvent] = asyncio.Queue()
        backlog = list(self.events)
        self._queues.append(queue)
        try:
            for event in backlog:
                yield event
                if isinstance(event, TERMINAL):
                    return
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, TERMINAL):
                    return
        finally:
            self._queues.remove(queue)

    async def wait(self) -> AnswerEvent:
        """The terminal event; waiting is shielded, so a cancelled waiter never cancels the answer."""
        if self.task is not None and not self.finished:
            try:
                await asyncio.shield(self.task)
            except asyncio.CancelledError:
                if not self.task.done():
                    raise  # the waiter was cancelled (client gone); the answer goes on
                # else the answer itself was stopped; its Failed event is the outcome
        return self.events[-1]


def stored_outcome(message: Message, *, siblings: list[str] | None = None) -> list[AnswerEvent]:
    """The events a subscriber gets for an answer that is no longer running."""
    out = message_out(message, siblings=siblings)
    events: list[AnswerEvent] = [SourcesFound(message_id=out.id, sources=out.sources)]
    if message.status == "complete":
        events.append(Finished(out))
    else:
        events.append(Failed(message=out, error=AnswerFailed.of(message)))
    return events

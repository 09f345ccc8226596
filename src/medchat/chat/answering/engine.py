"""The per-process chat engine: prepares questions, runs their answers, tracks the runs in flight.

``ask`` validates and stores the user message and an assistant message in ``streaming`` status
(nothing that can fail comes before that write), then runs the rest as its own task, not the
request's: a client that disconnects does not stop the answer, which is finished and stored as
``complete`` or ``failed``; ``stop`` cancels it on purpose. The events of a run are kept in order and
replayed to each subscriber, so the JSON route, the API's SSE and the UI's SSE share one pipeline.
What the engine hands out is frozen (``AnswerRun`` events, ``MessageOut``) or plain data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import timedelta
from typing import Any

from medchat.chat.answering.events import STOPPED_DETAIL, AnswerEvent, AnswerRun, Finished, stored_outcome
from medchat.chat.answering.generation import AnswerWriter
from medchat.chat.answering.ports import Caller, PassageSearch, SafetyChecks, no_passages
from medchat.chat.answering.titles import write_model_title
from medchat.chat.answering.turns import PreparedTurn, prepare_turn
from medchat.chat.limits import ChatLimits
from medchat.chat.models import MessageError
from medchat.chat.safety import RuleBasedSafety, load_rules
from medchat.chat.schemas import MessageCreate, MessageOut, message_out
from medchat.chat.services import ConversationService, finish
from medchat.llm import ChatTurn, LLMProvider
from medchat.platform.errors import NotFound
from medchat.platform.instances import InstanceHeartbeat
from medchat.settings import Settings

SHUTDOWN_DETAIL = "The server restarted while writing this answer. Retry to get a full answer."


class ChatEngine:
    """The per-process chat service: prepares questions, runs answers, tracks the runs in flight."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider: LLMProvider,
        search: PassageSearch = no_passages,
        safety: SafetyChecks | None = None,
        conversations: ConversationService | None = None,
        limits: ChatLimits | None = None,
        instances: InstanceHeartbeat | None = None,
        sources_only: LLMProvider | None = None,
    ) -> None:
        """``instances``: this process's heartbeat; its id marks the answers written here as this
        process's, so sweeps elsewhere leave them alone while it lives (None: answers carry no writer).
        ``sources_only``: the extractive provider a request may choose instead of ``provider``."""
        self.settings = settings
        self.provider = provider
        self.sources_only = provider if provider.kind == "sources-only" else sources_only
        """The sources-only provider requests may choose (``ask(provider=...)``); None: not offered."""
        self.search = search
        self.safety: SafetyChecks = safety or RuleBasedSafety.from_settings(settings)
        self.instances = instances
        self._conversations = conversations or ConversationService(
            stale_after=timedelta(minutes=settings.chat_stale_streaming_minutes), instances=instances
        )
        """Returns documents: kept inside chat (its handlers get it through ``handler_services``)."""
        self.limits = limits
        """Per-user budgets; None: unlimited (no Redis at hand)."""
        self._runs: dict[str, AnswerRun] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def handler_services(self) -> tuple[object, ...]:
        """The services chat's handlers are given besides the engine, for the runtime to register by type."""
        return (self._conversations,)

    # --- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        """Run once per process before serving: compile the safety rules (a broken rule file fails here,
        not on a user's question)."""
        await asyncio.to_thread(load_rules)
        if isinstance(self.safety, RuleBasedSafety):
            self.safety.check_topics()

    async def fail_orphaned(self) -> int:
        """Mark answers whose writer died as ``failed`` (serving and worker processes run this periodically)."""
        return await self._conversations.fail_orphaned()

    async def close(self) -> None:
        """Finish every run in flight as failed (stored), and stop background work."""
        runs = list(self._runs.values())
        for run in runs:
            run.cancel_detail, run.cancel_code = SHUTDOWN_DETAIL, "interrupted"
            if run.task is not None:
                run.task.cancel()
        for task in self._background:
            task.cancel()
        pending = [run.task for run in runs if run.task is not None] + list(self._background)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # --- asking --------------------------------------------------------------------------------
    async def ask(
        self,
        caller: Caller,
        request: MessageCreate,
        *,
        ip: str | None = None,
        prior: Sequence[ChatTurn] = (),
        provider: LLMProvider | None = None,
    ) -> AnswerRun:
        """Validate, check the caller's budgets, store the question and an answer in ``streaming`` status
        (audited, from ``ip``), then write the answer in its own task. Raises 4xx errors only (429
        ``rate_limited`` over budget); the run's events tell how the answer went.

        ``prior``: the conversation as the client holds it, used when the stored thread is empty (see
        ``prepare_turn``); ``provider``: the model to answer with instead of the engine's (``sources_only``).

        The passage search starts as soon as the question is known, so the query embedding runs
        while the messages are written (its result is only used after they are stored).
        """
        turn = await prepare_turn(
            caller,
            request,
            settings=self.settings,
            provider=provider or self.provider,
            search=self.search,
            safety=self.safety,
            conversations=self._conversations,
            limits=self.limits,
            ip=ip,
            writer_instance=self.instances.id if self.instances is not None else None,
            prior=prior,
        )
        run = AnswerRun(turn)
        self._runs[run.message_id] = run
        run.task = asyncio.create_task(self._answer(run), name=f"chat-answer-{run.message_id}")
        refused = bool(turn.user_message.safety.scope_refusal)  # a refused question never reaches a model
        if (
            turn.created_conversation
            and turn.provider.kind == "remote"
            and not refused
            and self.settings.chat_model_titles
        ):
            self._in_background(self._model_title(turn))
        return run

    def running(self, owner_id: str, message_id: str) -> AnswerRun | None:
        run = self._runs.get(message_id)
        return run if run is not None and run.turn.caller_id == owner_id else None

    async def stop(self, owner_id: str, message_id: str) -> MessageOut:
        """Stop an answer in flight; it is stored as ``failed`` with what was written so far."""
        message = await self._conversations.get_message(owner_id, message_id)
        run = self.running(owner_id, message_id)
        if run is not None and run.task is not None and not run.task.done():
            run.task.cancel()
            await run.wait()
        elif message.status == "streaming":  # running in another process, or orphaned
            await finish(message, status="failed", error=MessageError(code="stopped", detail=STOPPED_DETAIL))
        stopped = await self._conversations.get_message(owner_id, message_id)
        return message_out(stopped, siblings=await self._conversations.siblings(stopped))

    async def follow(self, owner_id: str, message_id: str, *, poll_seconds: float = 0.5) -> AsyncIterator[AnswerEvent]:
        """The events of an answer: live when it runs here, else its stored outcome once it has one."""
        run = self.running(owner_id, message_id)
        if run is not None:
            async for event in run.subscribe():
                yield event
            return
        message = await self._conversations.get_message(owner_id, message_id)
        if message.role != "assistant":
            raise NotFound("No such answer.")
        deadline = time.monotonic() + self.settings.chat_stale_streaming_minutes * 60
        while message.status == "streaming" and time.monotonic() < deadline:
            await asyncio.sleep(poll_seconds)
            run = self.running(owner_id, message_id)
            if run is not None:
                async for event in run.subscribe():
                    yield event
                return
            message = await self._conversations.get_message(owner_id, message_id)
        for event in stored_outcome(message, siblings=await self._conversations.siblings(message)):
            yield event

    # --- the answer and background work --------------------------------------------------------
    async def _answer(self, run: AnswerRun) -> None:
        turn = run.turn
        try:
            await AnswerWriter(self.settings, turn.provider, self.safety, self.limits).write(run)
        finally:
            self._runs.pop(run.message_id, None)
        # The local model writes one thing at a time: its title comes after the answer.
        if (
            isinstance(run.events[-1], Finished)
            and turn.created_conversation
            and turn.provider.kind == "local"
            and self.settings.chat_model_titles
            and not turn.user_message.safety.scope_refusal
        ):
            self._in_background(self._model_title(turn))

    async def _model_title(self, turn: PreparedTurn) -> None:
        await write_model_title(
            turn.conversation,
            turn.question,
            provider=turn.provider,  # the model the asker chose (and may use)
            safety=self.safety,
            redact=self.settings.redact_phi_for_llm,
        )

    def _in_background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- account-wide: the handlers of USER_DELETED and USER_EXPORT_REQUESTED --------------------
    async def delete_owner_data(self, *, user_id: str) -> int:
        """Delete every conversation and message of ``user_id``; returns how many conversations."""
        return await self._conversations.delete_owner_data(user_id=user_id)

    async def export_owner_data(self, *, user_id: str) -> dict[str, Any]:
        """Chat's share of the user's data export: ``{"chat": {"conversations": [...]}}``."""
        return await self._conversations.export_owner_data(user_id=user_id)

    async def wait_background(self) -> None:
        """Wait for titles and other background work (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

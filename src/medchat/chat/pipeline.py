"""The answer pipeline: persist the question, retrieve, generate with streaming, persist the answer.

``ChatEngine.prepare`` validates and stores the user message and an assistant message in
``streaming`` status (nothing that can fail comes before that write). ``ChatEngine.start`` runs the
rest as its own task, not the request's: a client that disconnects does not stop the answer, which is
finished and stored as ``complete`` or ``failed``; ``stop`` cancels it on purpose. Every run ends with
one write that moves the message out of ``streaming`` (shielded from cancellation); the events of a
run (``Meta``, ``SourcesFound``, ``Token``…, then ``Finished`` or ``Failed``) are kept in order and
replayed to each subscriber, so the JSON route, the API's SSE and the UI's SSE share one pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from beanie import PydanticObjectId

from medchat.chat.limits import Budgets, ChatLimits
from medchat.chat.models import (
    Conversation,
    Message,
    MessageError,
    Provenance,
    RetrievedRef,
    Safety,
    Source,
    Timing,
    TokenUsage,
    replace_where,
    set_fields,
    utcnow,
)
from medchat.chat.safety import (
    PhiRedactor,
    StreamRestorer,
    assess_emergency,
    assess_scope,
    check_citations,
    load_rules,
    scope_topics,
)
from medchat.chat.safety import scope_message as reviewed_scope_message
from medchat.chat.schemas import ConversationOut, MessageCreate, MessageOut, SourceOut, conversation_out, message_out
from medchat.chat.services import ConversationService, clean_title
from medchat.chat.tree import MessageTree
from medchat.llm import (
    ChatTurn,
    ContextPassage,
    GenerationDone,
    GenerationRequest,
    LLMProvider,
    LLMStreamInterrupted,
    LLMUnavailable,
    TextDelta,
)
from medchat.platform import audit
from medchat.platform.errors import AppError, NotFound, ServerError, ValidationFailed
from medchat.settings import Settings, SettingsError

log = structlog.get_logger(__name__)

CITATION = re.compile(r"\[(\d{1,3})\]")
TITLE_PROMPT = (
    "Write a short title, at most six words, for a conversation that starts with the question below. "
    "Answer with the title only, no quotes.\n\nQuestion: {question}"
)
HEURISTIC_TITLE_WORDS = 8
STOPPED_DETAIL = "You stopped this answer before it finished."
SHUTDOWN_DETAIL = "The server restarted while writing this answer. Retry to get a full answer."
INTERNAL_DETAIL = "Something went wrong while writing this answer. Retry, or ask again later."
REFUSAL_TEXT = (
    "The knowledge base has nothing on this question, so no answer is given (answers must come from "
    "your organisation's sources). Try rephrasing it, or ask an administrator to add a source that covers it."
)


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


class RuleBasedSafety:
    """The safety package's deterministic checks (``medchat.chat.safety``)."""

    def __init__(
        self,
        *,
        emergency_number: str = "112",
        out_of_scope_topics: Sequence[str] = (),
        out_of_scope_message: str = "",
    ) -> None:
        self.emergency_number = emergency_number
        self.out_of_scope_topics = tuple(out_of_scope_topics)
        self.out_of_scope_message = out_of_scope_message.strip()

    @classmethod
    def from_settings(cls, settings: Settings) -> RuleBasedSafety:
        return cls(
            emergency_number=settings.emergency_number,
            out_of_scope_topics=settings.out_of_scope_topics,
            out_of_scope_message=settings.out_of_scope_message,
        )

    def check_topics(self) -> None:
        """Raise ``SettingsError`` naming any configured out-of-scope topic the rules do not know."""
        unknown = [topic for topic in self.out_of_scope_topics if topic not in scope_topics()]
        if unknown:
            raise SettingsError(
                f"MEDCHAT_OUT_OF_SCOPE_TOPICS: unknown topic(s) {', '.join(unknown)}; "
                f"known: {', '.join(scope_topics())}"
            )

    def assess(self, text: str) -> Safety:
        """Emergency triage first (always), then scope: an emergency still gets its notice when refused."""
        assessment = assess_emergency(text, emergency_number=self.emergency_number)
        scope = assess_scope(text, out_of_scope_topics=self.out_of_scope_topics)
        return Safety(
            emergency=assessment.emergency,
            categories=list(assessment.categories),
            notice=assessment.notice,
            scope_refusal=scope.topic if scope.refuse else None,
        )

    def scope_message(self, topic: str) -> str:
        return self.out_of_scope_message or reviewed_scope_message(topic)

    def check_answer(self, text: str, *, passage_count: int) -> str:
        return check_citations(text, passage_count).text

    def redaction(self) -> LLMRedaction:
        return PhiRedactor()


# --- events ------------------------------------------------------------------------------------
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
    problem: dict[str, Any]


AnswerEvent = Meta | SourcesFound | Token | Finished | Failed
TERMINAL = (Finished, Failed)


class AnswerFailed(AppError):
    """The JSON route's error for a failed answer: the problem of the cause, plus the ids to retry with."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail"), headers=_retry_headers(problem))
        self.problem = problem
        self.status = int(problem.get("status", 503))  # type: ignore[misc]

    def to_problem(self) -> dict[str, Any]:
        return dict(self.problem)


def _retry_headers(problem: dict[str, Any]) -> dict[str, str]:
    retry_after = problem.get("retry_after")
    return {"Retry-After": str(retry_after)} if retry_after else {}


# --- a prepared question -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Retrieved:
    passages: list[PassageLike]
    ms: float
    available: bool


@dataclass
class PreparedTurn:
    caller_id: str
    caller_is_admin: bool
    conversation: Conversation
    user_message: Message
    assistant: Message
    history: list[ChatTurn]
    created_conversation: bool
    siblings: list[str]
    search: asyncio.Task[_Retrieved]
    """The passage search, started while the messages were written."""
    started: float = field(default_factory=time.perf_counter)
    """When the request began (``perf_counter``): ``timing.total_ms`` counts from here."""
    budgets: Budgets | None = None
    """The caller's budgets after this question was counted (None without limits)."""

    @property
    def question(self) -> str:
        return self.user_message.content

    def meta(self) -> Meta:
        return Meta(
            conversation=conversation_out(self.conversation),
            user_message=message_out(self.user_message),
            message=message_out(self.assistant, siblings=self.siblings),
            created_conversation=self.created_conversation,
        )


class AnswerRun:
    """One answer being written; keeps its events so late subscribers see them all, in order."""

    def __init__(self, turn: PreparedTurn) -> None:
        self.turn = turn
        self.events: list[AnswerEvent] = [turn.meta()]
        self._queues: list[asyncio.Queue[AnswerEvent]] = []
        self.task: asyncio.Task[None] | None = None
        self.cancel_detail = STOPPED_DETAIL
        self.cancel_code = "stopped"

    @property
    def message_id(self) -> str:
        return str(self.turn.assistant.id)

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
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.search = search
        self.safety: SafetyChecks = safety or RuleBasedSafety.from_settings(settings)
        self.conversations = conversations or ConversationService()
        self.limits = limits
        """Per-user budgets; None: unlimited (no Redis at hand)."""
        self._runs: dict[str, AnswerRun] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        """Run once per process before serving: compile the safety rules (a broken rule file fails here,
        not on a user's question) and mark answers orphaned by a crash as ``failed``."""
        await asyncio.to_thread(load_rules)
        if isinstance(self.safety, RuleBasedSafety):
            self.safety.check_topics()
        await self.conversations.fail_orphaned()

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
    async def prepare(self, caller: Caller, request: MessageCreate, *, ip: str | None = None) -> PreparedTurn:
        """Validate, check the caller's budgets, then store the question and an answer in ``streaming``
        status (and audit it, from ``ip``). Raises 4xx errors only (429 ``rate_limited`` over budget).

        The passage search starts as soon as the question is known, so the query embedding runs
        while the messages are written (its result is only used after they are stored).
        """
        started = time.perf_counter()
        content = request.content.strip()
        if len(content) > self.settings.chat_max_message_chars:
            raise ValidationFailed(f"content: at most {self.settings.chat_max_message_chars} characters")
        if (request.parent_id or request.edit_of) and not request.conversation_id:
            raise ValidationFailed("conversation_id: required with parent_id or edit_of")
        search: asyncio.Task[_Retrieved] | None = None
        if content:
            search = asyncio.create_task(self._search(content, caller))
        try:
            turn = await self._prepare(caller, request, content, search, ip=ip)
        except BaseException:
            if search is not None:
                search.cancel()
            raise
        turn.started = started
        return turn

    async def _prepare(
        self,
        caller: Caller,
        request: MessageCreate,
        content: str,
        search: asyncio.Task[_Retrieved] | None,
        *,
        ip: str | None,
    ) -> PreparedTurn:
        conversation: Conversation | None = None
        tree = MessageTree([])
        if request.conversation_id:
            conversation, messages = await asyncio.gather(
                self.conversations.get(caller.id, request.conversation_id),
                self.conversations.messages_of(caller.id, request.conversation_id),
            )
            tree = MessageTree(messages)

        parent_id, user_message = _place(request, content, conversation, tree)
        # The request is valid: count it against the caller's budget before anything is stored.
        budgets = None
        if self.limits is not None:
            budgets = await self.limits.check_and_take(caller.id, is_admin=bool(caller.is_admin))
        if search is None and user_message is not None:  # regenerating: the question is a stored one
            search = asyncio.create_task(self._search(user_message.content, caller))

        now = utcnow()
        created = conversation is None
        assistant_id = PydanticObjectId()
        writes: list[Awaitable[Any]] = []
        if conversation is None:
            conversation = Conversation(
                id=PydanticObjectId(),
                owner_id=caller.id,
                title=heuristic_title(content),
                title_source="heuristic",
                created_at=now,
                updated_at=now,
                last_message_at=now,
                active_leaf_id=str(assistant_id),
            )
            writes.append(conversation.insert())
        else:
            conversation.active_leaf_id = str(assistant_id)
            conversation.updated_at = conversation.last_message_at = now
            writes.append(replace_where(conversation))
        conversation_id = str(conversation.id)

        to_insert: list[Message] = []
        if user_message is None:
            user_message = Message(
                id=PydanticObjectId(),
                conversation_id=conversation_id,
                owner_id=caller.id,
                parent_id=parent_id,
                role="user",
                content=content,
                safety=self.safety.assess(content),
                created_at=now,
            )
            to_insert.append(user_message)
        assistant = Message(
            id=assistant_id,
            conversation_id=conversation_id,
            owner_id=caller.id,
            parent_id=str(user_message.id),
            role="assistant",
            status="streaming",
            safety=user_message.safety,
            model=self.provider.model,
            model_label=self.provider.label,
            created_at=now,
        )
        to_insert.append(assistant)
        writes += _audit_turn(caller.id, ip, conversation_id, created=created, new_message=to_insert[0])
        # The messages carry their own ids, so they, the conversation and the audit events are written in parallel.
        await asyncio.gather(Message.insert_many(to_insert), *writes)
        # The answer's alternatives: earlier answers to the same question when regenerating.
        earlier = tree.children.get(str(user_message.id), []) if len(to_insert) == 1 else []
        siblings = [*(str(answer.id) for answer in earlier), str(assistant_id)]
        assert search is not None
        return PreparedTurn(
            caller_id=caller.id,
            caller_is_admin=bool(caller.is_admin),
            conversation=conversation,
            user_message=user_message,
            assistant=assistant,
            history=self._history(tree, parent_id),
            created_conversation=created,
            siblings=siblings,
            search=search,
            budgets=budgets,
        )

    def start(self, turn: PreparedTurn) -> AnswerRun:
        run = AnswerRun(turn)
        self._runs[run.message_id] = run
        run.task = asyncio.create_task(self._answer(run), name=f"chat-answer-{run.message_id}")
        refused = bool(turn.user_message.safety.scope_refusal)  # a refused question never reaches a model
        if turn.created_conversation and self.provider.kind == "remote" and not refused:
            self._in_background(self._model_title(turn.conversation, turn.question))
        return run

    async def ask(self, caller: Caller, request: MessageCreate, *, ip: str | None = None) -> AnswerRun:
        return self.start(await self.prepare(caller, request, ip=ip))

    def running(self, owner_id: str, message_id: str) -> AnswerRun | None:
        run = self._runs.get(message_id)
        return run if run is not None and run.turn.caller_id == owner_id else None

    async def stop(self, owner_id: str, message_id: str) -> Message:
        """Stop an answer in flight; it is stored as ``failed`` with what was written so far."""
        message = await self.conversations.get_message(owner_id, message_id)
        run = self.running(owner_id, message_id)
        if run is not None and run.task is not None and not run.task.done():
            run.task.cancel()
            await run.wait()
        elif message.status == "streaming":  # running in another process, or orphaned
            await _finish(message, status="failed", error=MessageError(code="stopped", detail=STOPPED_DETAIL))
        return await self.conversations.get_message(owner_id, message_id)

    async def follow(self, owner_id: str, message_id: str, *, poll_seconds: float = 0.5) -> AsyncIterator[AnswerEvent]:
        """The events of an answer: live when it runs here, else its stored outcome once it has one."""
        run = self.running(owner_id, message_id)
        if run is not None:
            async for event in run.subscribe():
                yield event
            return
        message = await self.conversations.get_message(owner_id, message_id)
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
            message = await self.conversations.get_message(owner_id, message_id)
        for event in stored_outcome(message, siblings=await self.conversations.siblings(message)):
            yield event

    # --- the answer itself ---------------------------------------------------------------------
    async def _answer(self, run: AnswerRun) -> None:
        turn = run.turn
        assistant = turn.assistant
        timing = Timing()
        provenance = Provenance(retrieval_query=turn.question, provider_kind=self.provider.kind)
        parts: list[str] = []
        refused_topic = turn.user_message.safety.scope_refusal
        try:
            passages = await self._retrieve(turn, timing, provenance)
            sources = [_source(number, passage) for number, passage in enumerate(passages, start=1)]
            assistant.sources = sources
            run.publish(SourcesFound(message_id=run.message_id, sources=message_out(assistant).sources))
            generation_started = time.perf_counter()
            done = await self._write(run, passages, parts, timing, provenance=provenance, started=generation_started)
            timing.generation_ms = _ms_since(generation_started)
            text = self.safety.check_answer("".join(parts), passage_count=len(passages)).strip()
            if done is not None:
                assistant.model = done.model
                assistant.usage = TokenUsage(
                    prompt_tokens=done.usage.prompt_tokens, completion_tokens=done.usage.completion_tokens
                )
                provenance.finish_reason = done.finish_reason
            timing.total_ms = _ms_since(turn.started)
            await _finish(
                assistant,
                status="complete",
                content=text,
                grounded=bool(passages) and bool(CITATION.search(text)),
                timing=timing,
                provenance=provenance,
            )
            if done is not None:
                await self._count_tokens(turn, done.usage.prompt_tokens + done.usage.completion_tokens)
            run.publish(Finished(message_out(assistant, siblings=turn.siblings)))
            if turn.created_conversation and self.provider.kind == "local" and not refused_topic:
                self._in_background(self._model_title(turn.conversation, turn.question))
        except asyncio.CancelledError:
            provenance.finish_reason = run.cancel_code
            error = MessageError(code=run.cancel_code, reason=run.cancel_code, detail=run.cancel_detail)
            await asyncio.shield(self._fail(run, error, "".join(parts), timing, provenance))
            raise
        except LLMUnavailable as failure:
            partial = (
                failure.partial_text if isinstance(failure, LLMStreamInterrupted) and not parts else "".join(parts)
            )
            problem = failure.to_problem()
            error = MessageError(
                code=failure.code,
                reason=problem.get("reason"),
                detail=failure.detail,
                retry_after=problem.get("retry_after"),
            )
            await self._fail(run, error, partial, timing, provenance, status=failure.status)
        except Exception:
            log.exception("answer failed", message_id=run.message_id)
            error = MessageError(code=ServerError.code, reason="internal", detail=INTERNAL_DETAIL)
            await self._fail(run, error, "".join(parts), timing, provenance, status=500)
        finally:
            self._runs.pop(run.message_id, None)

    async def _count_tokens(self, turn: PreparedTurn, tokens: int) -> None:
        """Add an answer's tokens to the caller's day; a Redis hiccup loses the count, never the answer."""
        if self.limits is None or tokens <= 0:
            return
        try:
            await self.limits.count_tokens(turn.caller_id, is_admin=turn.caller_is_admin, tokens=tokens)
        except Exception as error:  # noqa: BLE001 - the answer is stored; the budget is best effort
            log.warning("could not count an answer's tokens", message_id=str(turn.assistant.id), error=str(error))

    async def _search(self, question: str, caller: Caller) -> _Retrieved:
        """Never raises: a broken index degrades to an answer without sources."""
        started = time.perf_counter()
        try:
            passages = list(await self.search(question, user_id=caller.id, is_admin=bool(caller.is_admin)))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a broken index degrades to an ungrounded answer, not a failure
            log.warning("retrieval failed; answering without sources", error=str(error))
            return _Retrieved([], _ms_since(started), available=False)
        return _Retrieved(passages, _ms_since(started), available=True)

    async def _retrieve(self, turn: PreparedTurn, timing: Timing, provenance: Provenance) -> list[PassageLike]:
        if turn.user_message.safety.scope_refusal:  # refused: nothing is looked up
            turn.search.cancel()
            return []
        retrieved = await turn.search
        timing.retrieval_ms = retrieved.ms
        provenance.retrieval_available = retrieved.available
        provenance.retrieved = [
            RetrievedRef(chunk_id=passage.chunk_id, document_id=passage.document_id, score=float(passage.score))
            for passage in retrieved.passages
        ]
        return retrieved.passages

    async def _write(
        self,
        run: AnswerRun,
        passages: Sequence[PassageLike],
        parts: list[str],
        timing: Timing,
        *,
        provenance: Provenance,
        started: float,
    ) -> GenerationDone | None:
        """The answer's text into ``parts`` (and published): the scope refusal for an out-of-scope question,
        the ungrounded refusal under ``ungrounded_policy=refuse``, else the model's stream."""
        refused_topic = run.turn.user_message.safety.scope_refusal
        if refused_topic:
            fixed, provenance.finish_reason = self.safety.scope_message(refused_topic), "scope_refusal"
        elif not passages and self.settings.ungrounded_policy == "refuse" and self.provider.kind != "sources-only":
            fixed, provenance.finish_reason = REFUSAL_TEXT, "ungrounded_refusal"
        else:
            return await self._generate(run, passages, parts, timing, started)
        parts.append(fixed)
        run.publish(Token(fixed))
        return None

    async def _generate(
        self,
        run: AnswerRun,
        passages: Sequence[PassageLike],
        parts: list[str],
        timing: Timing,
        started: float,
    ) -> GenerationDone | None:
        turn = run.turn
        history, question = turn.history, turn.question
        restorer: StreamRestorer | None = None
        if self.settings.redact_phi_for_llm:
            redaction = self.safety.redaction()
            history = [ChatTurn(past.role, redaction.redact(past.content)) for past in history]
            question = redaction.redact(question)
            restorer = redaction.restore_stream()
        request = GenerationRequest(
            question=question,
            history=history,
            passages=[
                ContextPassage(number=number, title=passage.title, page=passage.page, text=passage.text)
                for number, passage in enumerate(passages, start=1)
            ],
        )
        done: GenerationDone | None = None

        def emit(text: str) -> None:
            if not text:
                return
            if not parts:
                timing.first_token_ms = _ms_since(started)
            parts.append(text)
            run.publish(Token(text))

        try:
            async with contextlib.aclosing(self.provider.stream(request)) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        emit(restorer.feed(event.text) if restorer else event.text)
                    elif isinstance(event, GenerationDone):
                        done = event
        finally:
            if restorer is not None:
                emit(restorer.flush())
        return done

    async def _fail(
        self,
        run: AnswerRun,
        error: MessageError,
        partial: str,
        timing: Timing,
        provenance: Provenance,
        *,
        status: int = 503,
    ) -> None:
        turn = run.turn
        assistant = turn.assistant
        timing.total_ms = _ms_since(turn.started)
        try:
            await _finish(
                assistant, status="failed", content=partial.strip(), error=error, timing=timing, provenance=provenance
            )
        except Exception:  # the store is down: tell the waiting client all the same
            log.exception("could not store a failed answer", message_id=run.message_id)
        problem = {
            "type": f"https://medchat.dev/problems/{error.code}",
            "title": _TITLES.get(error.code, "The answer could not be completed"),
            "status": status,
            "detail": error.detail,
            "code": error.code,
            "reason": error.reason,
            "conversation_id": str(turn.conversation.id),
            "user_message_id": str(turn.user_message.id),
            "message_id": run.message_id,
            "retry": {"conversation_id": str(turn.conversation.id), "parent_id": str(turn.user_message.id)},
        }
        if error.retry_after:
            problem["retry_after"] = error.retry_after
        run.publish(Failed(message=message_out(assistant, siblings=turn.siblings), problem=problem))

    def _history(self, tree: MessageTree, parent_id: str | None) -> list[ChatTurn]:
        """Answered question/answer pairs of the thread before the new question, newest kept."""
        turns: list[ChatTurn] = []
        thread = tree.history_before(parent_id)
        for question, answer in itertools.pairwise(thread):
            if question.role == "user" and answer.role == "assistant" and answer.status == "complete":
                turns += [ChatTurn("user", question.content), ChatTurn("assistant", answer.content)]
        limit = self.settings.chat_history_turns * 2
        return turns[-limit:] if limit else []

    # --- titles --------------------------------------------------------------------------------
    async def _model_title(self, conversation: Conversation, question: str) -> None:
        """The model's title for a new conversation; with ``redact_phi_for_llm`` it sees the question redacted."""
        redaction = self.safety.redaction() if self.settings.redact_phi_for_llm else None
        prompt = TITLE_PROMPT.format(question=redaction.redact(question) if redaction else question)
        try:
            title = await self.provider.complete(prompt, max_tokens=16)
            if redaction is not None:
                title = "".join(redaction.restore_stream().restore_all(iter([title])))
            title = clean_title(title)
        except Exception as error:  # noqa: BLE001 - the heuristic title stays; titles never fail a turn
            log.info("title generation failed; keeping the heuristic title", error=str(error))
            return
        if title:
            await set_fields(
                Conversation,
                {"_id": conversation.id, "title_source": {"$in": ["default", "heuristic"]}},
                {"title": title, "title_source": "model"},
            )

    def _in_background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait_background(self) -> None:
        """Wait for titles and other background work (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


_TITLES = {
    "llm_unavailable": "The language model is unavailable",
    "stopped": "The answer was stopped",
    "interrupted": "The answer was interrupted",
    "internal_error": "Internal error",
}


def _place(
    request: MessageCreate, content: str, conversation: Conversation | None, tree: MessageTree
) -> tuple[str | None, Message | None]:
    """Where the new question goes: ``(parent_id, existing question)``; the question is set when regenerating."""
    if request.edit_of:
        edited = tree.get(request.edit_of)
        if edited is None or edited.role != "user":
            raise NotFound("No such question in this conversation.")
        _require_content(content)
        return edited.parent_id, None
    if request.parent_id:
        parent = tree.get(request.parent_id)
        if parent is None:
            raise NotFound("No such message in this conversation.")
        if parent.role == "user":
            if content:
                raise ValidationFailed(
                    "content: must be empty when parent_id is a question (that regenerates its answer)"
                )
            return parent.parent_id, parent
        _require_content(content)
        return request.parent_id, None
    _require_content(content)
    leaf = tree.get(conversation.active_leaf_id) if conversation else None
    leaf = leaf or tree.latest_leaf(None)
    if leaf is None:
        return None, None
    # Normally the leaf is an answer; a question left without one gets a sibling instead of a child.
    return (str(leaf.id), None) if leaf.role == "assistant" else (leaf.parent_id, None)


def _audit_turn(
    actor_id: str, ip: str | None, conversation_id: str, *, created: bool, new_message: Message
) -> list[Awaitable[None]]:
    """``create`` events: the conversation when it is new, and the new message (the question, with a hash
    of its text, or the answer when one is regenerated)."""
    events = []
    if created:
        events.append(
            audit.record("create", actor_id=actor_id, resource_type="conversation", resource_id=conversation_id, ip=ip)
        )
    events.append(
        audit.record(
            "create",
            actor_id=actor_id,
            resource_type="message",
            resource_id=str(new_message.id),
            ip=ip,
            content=new_message.content if new_message.role == "user" else None,
            conversation_id=conversation_id,
            role=new_message.role,
        )
    )
    return events


def _require_content(content: str) -> None:
    if not content:
        raise ValidationFailed("content: must not be empty")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _source(number: int, passage: PassageLike) -> Source:
    return Source(
        number=number,
        document_id=str(passage.document_id),
        chunk_id=str(passage.chunk_id) if passage.chunk_id is not None else None,
        title=passage.title,
        page=passage.page,
        section=passage.section or None,
        snippet=passage.snippet,
        score=round(float(passage.score), 4),
        text=passage.text,
    )


async def _finish(message: Message, *, status: str, **values: Any) -> None:
    """The one write that takes an answer out of ``streaming``; a no-op if something else already did."""
    message.status = status  # type: ignore[assignment]
    message.finished_at = utcnow()
    for name, value in values.items():
        setattr(message, name, value)
    await replace_where(message, status="streaming")


def stored_outcome(message: Message, *, siblings: list[str] | None = None) -> list[AnswerEvent]:
    """The events a subscriber gets for an answer that is no longer running."""
    out = message_out(message, siblings=siblings)
    events: list[AnswerEvent] = [SourcesFound(message_id=out.id, sources=out.sources)]
    if message.status == "complete":
        events.append(Finished(out))
    else:
        error = message.error or MessageError(code="interrupted", detail=STOPPED_DETAIL)
        problem = {
            "type": f"https://medchat.dev/problems/{error.code}",
            "title": _TITLES.get(error.code, "The answer could not be completed"),
            "status": 503,
            "detail": error.detail,
            "code": error.code,
            "reason": error.reason,
            "conversation_id": message.conversation_id,
            "user_message_id": message.parent_id,
            "message_id": str(message.id),
            "retry": {"conversation_id": message.conversation_id, "parent_id": message.parent_id},
        }
        events.append(Failed(message=out, problem=problem))
    return events


def heuristic_title(question: str) -> str:
    """The question's first words, trimmed: the title until (or instead of) a model-written one."""
    words = " ".join(question.split()).split(" ")
    title = " ".join(words[:HEURISTIC_TITLE_WORDS])
    if len(words) > HEURISTIC_TITLE_WORDS:
        title = title.rstrip(".,;:!?") + "…"
    return clean_title(title) or "New conversation"

"""Writing one answer: wait for its passages, stream the model's text (or a fixed refusal), check the
citations, and store the outcome with one write that takes the message out of ``streaming``.

The write is shielded from cancellation: a stopped or interrupted answer is stored as ``failed`` with
what was written so far, and its ``Failed`` event published, before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from medchat.chat.answering.events import AnswerFailed, AnswerRun, Failed, Finished, SourcesFound, Token
from medchat.chat.answering.observed import count_answer
from medchat.chat.answering.ports import PassageLike, SafetyChecks
from medchat.chat.answering.turns import PreparedTurn, ms_since
from medchat.chat.limits import ChatLimits
from medchat.chat.models import (
    MessageError,
    Provenance,
    QuestionRewrite,
    RetrievedRef,
    Source,
    Timing,
    TokenUsage,
)
from medchat.chat.safety import StreamRestorer, cites_passages
from medchat.chat.schemas import message_out
from medchat.chat.services import finish
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
from medchat.platform.errors import ServerError
from medchat.platform.metrics import STREAMS_IN_FLIGHT
from medchat.platform.spans import TRACER
from medchat.settings import Settings

log = structlog.get_logger(__name__)

INTERNAL_DETAIL = "Something went wrong while writing this answer. Retry, or ask again later."
REFUSAL_TEXT = (
    "The knowledge base has nothing on this question, so no answer is given (answers must come from "
    "your organisation's sources). Try rephrasing it, or ask an administrator to add a source that covers it."
)


@dataclass
class AnswerWriter:
    """Writes the answer of one run with the engine's model, checks and budgets."""

    settings: Settings
    provider: LLMProvider
    safety: SafetyChecks
    limits: ChatLimits | None

    async def write(self, run: AnswerRun) -> None:
        """Publish the run's events up to ``Finished`` or ``Failed``; never raises but ``CancelledError``.

        One ``chat.answer`` span (a child of the request's, whose context the task copied) covers it, its
        outcome in ``medchat.answer.status``; a stop is a cancellation, not an error, so no exception is
        recorded on it."""
        with (
            TRACER.start_as_current_span("chat.answer", record_exception=False, set_status_on_exception=False) as span,
            STREAMS_IN_FLIGHT.track_inprogress(),
        ):
            span.set_attribute("medchat.llm.provider", self.provider.kind)
            try:
                await self._write_answer(run)
            finally:
                span.set_attribute("medchat.answer.status", run.turn.assistant.status)

    async def _write_answer(self, run: AnswerRun) -> None:
        turn = run.turn
        assistant = turn.assistant
        timing = Timing()
        provenance = Provenance(retrieval_query=turn.question, provider_kind=self.provider.kind)
        parts: list[str] = []
        try:
            passages = await _retrieve(turn, timing, provenance)
            assistant.sources = [_source(number, passage) for number, passage in enumerate(passages, start=1)]
            run.publish(SourcesFound(message_id=run.message_id, sources=message_out(assistant).sources))
            generation_started = time.perf_counter()
            done = await self._write(run, passages, parts, timing, provenance=provenance, started=generation_started)
            timing.generation_ms = ms_since(generation_started)
            text = self.safety.check_answer("".join(parts), passage_count=len(passages)).strip()
            if done is not None:
                assistant.model = done.model
                assistant.usage = TokenUsage(
                    prompt_tokens=done.usage.prompt_tokens, completion_tokens=done.usage.completion_tokens
                )
                provenance.finish_reason = done.finish_reason
            timing.total_ms = ms_since(turn.started)
            grounded = cites_passages(text, len(passages))
            await finish(
                assistant,
                status="complete",
                content=text,
                grounded=grounded,
                timing=timing,
                provenance=provenance,
            )
            count_answer("complete", "none" if done is None else "grounded" if grounded else "ungrounded")
            if done is not None:
                await self._count_tokens(turn, done.usage.prompt_tokens + done.usage.completion_tokens)
            run.publish(Finished(message_out(assistant, siblings=turn.siblings)))
        except asyncio.CancelledError:
            provenance.finish_reason = run.cancel_code
            error = MessageError(code=run.cancel_code, reason=run.cancel_code, detail=run.cancel_detail)
            await asyncio.shield(_fail(run, error, "".join(parts), timing, provenance))
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
            await _fail(run, error, partial, timing, provenance, status=failure.status)
        except Exception:
            log.exception("answer failed", message_id=run.message_id)
            error = MessageError(code=ServerError.code, reason="internal", detail=INTERNAL_DETAIL)
            await _fail(run, error, "".join(parts), timing, provenance, status=ServerError.status)

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
                timing.first_token_ms = ms_since(started)
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

    async def _count_tokens(self, turn: PreparedTurn, tokens: int) -> None:
        """Add an answer's tokens to the caller's day; a Redis hiccup loses the count, never the answer."""
        if self.limits is None or tokens <= 0:
            return
        try:
            await self.limits.count_tokens(turn.caller_id, is_admin=turn.caller_is_admin, tokens=tokens)
        except Exception as error:  # noqa: BLE001 - the answer is stored; the budget is best effort
            log.warning("could not count an answer's tokens", message_id=str(turn.assistant.id), error=str(error))


async def _retrieve(turn: PreparedTurn, timing: Timing, provenance: Provenance) -> list[PassageLike]:
    if turn.user_message.safety.scope_refusal:  # refused: nothing is looked up
        turn.search.cancel()
        return []
    retrieved = await turn.search
    timing.retrieval_ms = retrieved.ms
    query = retrieved.query
    provenance.retrieval_query = query.text
    if query.method is not None:
        provenance.question_rewrite = QuestionRewrite(
            method=query.method, question=turn.question, model=query.model, ms=query.ms
        )
    provenance.retrieval_available = retrieved.available
    provenance.retrieved = [
        RetrievedRef(chunk_id=passage.chunk_id, document_id=passage.document_id, score=float(passage.score))
        for passage in retrieved.passages
    ]
    return retrieved.passages


async def _fail(
    run: AnswerRun,
    error: MessageError,
    partial: str,
    timing: Timing,
    provenance: Provenance,
    *,
    status: int | None = None,
) -> None:
    """Store the answer as ``failed`` with ``partial`` and publish its ``Failed`` event (even if the store
    is down: the waiting client is told all the same)."""
    turn = run.turn
    assistant = turn.assistant
    timing.total_ms = ms_since(turn.started)
    try:
        await finish(
            assistant, status="failed", content=partial.strip(), error=error, timing=timing, provenance=provenance
        )
        count_answer("failed", "none")
    except Exception:  # the store is down: tell the waiting client all the same
        log.exception("could not store a failed answer", message_id=run.message_id)
    failure = AnswerFailed.of(assistant, status=status)
    run.publish(Failed(message=message_out(assistant, siblings=turn.siblings), error=failure))


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

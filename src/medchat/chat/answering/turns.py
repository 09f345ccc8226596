"""A question before it is answered: validated, placed in the conversation's tree, stored and audited.

``prepare_turn`` writes the question (unless one is regenerated) and its answer in ``streaming`` status
in one go; nothing that can fail comes after that write but the answer itself. The passage search
starts as soon as the question is known, so the query embedding runs while the messages are written.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from beanie import PydanticObjectId

from medchat.chat.answering.observed import triage
from medchat.chat.answering.ports import Caller, PassageLike, PassageSearch, SafetyChecks
from medchat.chat.answering.queries import SearchQuery, search_query
from medchat.chat.answering.titles import heuristic_title
from medchat.chat.limits import Budgets, ChatLimits
from medchat.chat.models import Conversation, Message, set_fields
from medchat.chat.schemas import MessageCreate
from medchat.chat.services import ConversationService
from medchat.chat.tree import MessageTree
from medchat.llm import ChatTurn, LLMProvider
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import NotFound, ValidationFailed
from medchat.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Retrieved:
    passages: list[PassageLike]
    ms: float
    available: bool
    """False when the search failed (the answer is then written without sources)."""
    query: SearchQuery
    """What was searched: the question, or a follow-up made standalone."""


@dataclass
class PreparedTurn:
    caller_id: str
    caller_is_admin: bool
    conversation: Conversation
    user_message: Message
    assistant: Message
    history: list[ChatTurn]
    provider: LLMProvider
    """The model that writes this answer: the engine's, or the one the request chose."""
    created_conversation: bool
    siblings: list[str]
    search: asyncio.Task[Retrieved]
    """The passage search, started while the messages were written."""
    started: float = field(default_factory=time.perf_counter)
    """When the request began (``perf_counter``): ``timing.total_ms`` counts from here."""
    budgets: Budgets | None = None
    """The caller's budgets after this question was counted (None without limits)."""

    @property
    def question(self) -> str:
        return self.user_message.content


async def prepare_turn(
    caller: Caller,
    request: MessageCreate,
    *,
    settings: Settings,
    provider: LLMProvider,
    search: PassageSearch,
    safety: SafetyChecks,
    conversations: ConversationService,
    limits: ChatLimits | None,
    ip: str | None,
    writer_instance: str | None = None,
    prior: Sequence[ChatTurn] = (),
) -> PreparedTurn:
    """Validate, check the caller's budgets, then store the question and an answer in ``streaming`` status
    and audit them (from ``ip``). Raises 4xx errors only (429 ``rate_limited`` over budget).

    ``prior``: the conversation so far as the client holds it (not stored); it stands in for the stored
    thread, for the follow-up query and the model's history, when the thread has no stored turns."""
    started = time.perf_counter()
    content = request.content.strip()
    if len(content) > settings.chat_max_message_chars:
        raise ValidationFailed(f"content: at most {settings.chat_max_message_chars} characters")
    if (request.parent_id or request.edit_of) and not request.conversation_id:
        raise ValidationFailed("conversation_id: required with parent_id or edit_of")
    searching: asyncio.Task[Retrieved] | None = None
    if content and not request.conversation_id and not prior:  # a first question: nothing to follow up on
        searching = asyncio.create_task(search_passages(search, _as_asked(content), caller))
    try:
        conversation: Conversation | None = None
        tree = MessageTree([])
        if request.conversation_id:
            conversation, messages = await asyncio.gather(
                conversations.get(caller.id, request.conversation_id),
                conversations.messages_of(caller.id, request.conversation_id),
            )
            tree = MessageTree(messages)
        parent_id, question = _place(request, content, conversation, tree)
        # The request is valid: count it against the caller's budget before anything is stored.
        budgets = None
        if limits is not None:
            budgets = await limits.check_and_take(caller.id, is_admin=bool(caller.is_admin))
        if searching is None:
            asked = question.content if question is not None else content  # regenerating: a stored question
            thread = tree.history_before(parent_id) or prior
            earlier = [turn.content for turn in thread if turn.role == "user"]
            query = _query_of(asked, earlier, settings=settings, provider=provider, safety=safety)
            searching = asyncio.create_task(search_passages(search, query, caller))
        stored = await _store(
            caller,
            content,
            conversation,
            tree,
            parent_id=parent_id,
            question=question,
            safety=safety,
            provider=provider,
            ip=ip,
            writer_instance=writer_instance,
        )
    except BaseException:
        if searching is not None:
            searching.cancel()
        raise
    stored_conversation, user_message, assistant, siblings = stored
    return PreparedTurn(
        caller_id=caller.id,
        caller_is_admin=bool(caller.is_admin),
        conversation=stored_conversation,
        user_message=user_message,
        assistant=assistant,
        history=history_before(tree, parent_id, turns=settings.chat_history_turns)
        or _newest(list(prior), turns=settings.chat_history_turns),
        provider=provider,
        created_conversation=conversation is None,
        siblings=siblings,
        search=searching,
        started=started,
        budgets=budgets,
    )


async def _store(
    caller: Caller,
    content: str,
    conversation: Conversation | None,
    tree: MessageTree,
    *,
    parent_id: str | None,
    question: Message | None,
    safety: SafetyChecks,
    provider: LLMProvider,
    ip: str | None,
    writer_instance: str | None,
) -> tuple[Conversation, Message, Message, list[str]]:
    """Write the conversation (new, or its new active leaf), the question unless it is a stored one, the
    answer in ``streaming`` status and the audit events, in parallel (the messages carry their own ids).

    Returns the conversation, the question, the answer and the answer's alternatives (its siblings)."""
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
        moved = {"active_leaf_id": conversation.active_leaf_id, "updated_at": now, "last_message_at": now}
        writes.append(set_fields(Conversation, {"_id": conversation.id}, moved))
    conversation_id = str(conversation.id)

    to_insert: list[Message] = []
    if question is None:
        question = Message(
            id=PydanticObjectId(),
            conversation_id=conversation_id,
            owner_id=caller.id,
            parent_id=parent_id,
            role="user",
            content=content,
            safety=triage(safety, content),
            created_at=now,
        )
        to_insert.append(question)
    assistant = Message(
        id=assistant_id,
        conversation_id=conversation_id,
        owner_id=caller.id,
        parent_id=str(question.id),
        role="assistant",
        status="streaming",
        safety=question.safety,
        model=provider.model,
        model_label=provider.label,
        created_at=now,
        writer_instance=writer_instance,
    )
    to_insert.append(assistant)
    writes.append(
        audit.record_all(_audit_turn(caller.id, ip, conversation_id, created=created, new_message=to_insert[0]))
    )
    await asyncio.gather(Message.insert_many(to_insert), *writes)
    # The answer's alternatives: earlier answers to the same question when regenerating.
    earlier = tree.children.get(str(question.id), []) if len(to_insert) == 1 else []
    return conversation, question, assistant, [*(str(answer.id) for answer in earlier), str(assistant_id)]


async def _as_asked(question: str) -> SearchQuery:
    return SearchQuery(question)


def _query_of(
    question: str, earlier: list[str], *, settings: Settings, provider: LLMProvider, safety: SafetyChecks
) -> Awaitable[SearchQuery]:
    """The search query of a question following ``earlier`` ones, as ``chat_follow_up_queries`` says."""
    if settings.chat_follow_up_queries == "off" or not earlier:
        return _as_asked(question)
    rewriter = provider if settings.chat_follow_up_queries == "auto" and provider.kind == "remote" else None
    return search_query(question, earlier, provider=rewriter, safety=safety, redact=settings.redact_phi_for_llm)


async def search_passages(search: PassageSearch, making_query: Awaitable[SearchQuery], caller: Caller) -> Retrieved:
    """Make the query, then search it. Never raises: a broken index degrades to an answer without sources."""
    query = await making_query
    started = time.perf_counter()
    try:
        passages = list(await search(query.text, user_id=caller.id, is_admin=bool(caller.is_admin)))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - a broken index degrades to an ungrounded answer, not a failure
        log.warning("retrieval failed; answering without sources", error=str(error))
        return Retrieved([], ms_since(started), available=False, query=query)
    return Retrieved(passages, ms_since(started), available=True, query=query)


def history_before(tree: MessageTree, parent_id: str | None, *, turns: int) -> list[ChatTurn]:
    """Answered question/answer pairs of the thread before the new question, the newest ``turns`` kept."""
    pairs: list[ChatTurn] = []
    for question, answer in itertools.pairwise(tree.history_before(parent_id)):
        if question.role == "user" and answer.role == "assistant" and answer.status == "complete":
            pairs += [ChatTurn("user", question.content), ChatTurn("assistant", answer.content)]
    return _newest(pairs, turns=turns)


def _newest(history: list[ChatTurn], *, turns: int) -> list[ChatTurn]:
    limit = turns * 2
    return history[-limit:] if limit else []


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
) -> list[audit.AuditEvent]:
    """``create`` events: the conversation when it is new, and the new message (the question, with a hash
    of its text, or the answer when one is regenerated)."""
    events = []
    if created:
        events.append(
            audit.event("create", actor_id=actor_id, resource_type="conversation", resource_id=conversation_id, ip=ip)
        )
    events.append(
        audit.event(
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


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

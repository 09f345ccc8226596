"""The chat API's input and output types; field names are the contract of API.md (extensions are additive)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from medchat.chat.models import Conversation, Message

TITLE_MAX_CHARS = 120

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX_CHARS)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SourceOut(msgspec.Struct, kw_only=True):
    number: int
    document_id: str
    chunk_id: str | None
    title: str
    page: int | None
    section: str | None
    snippet: str
    score: float
    text: str = ""
    """The whole passage the answer was given (additive to API.md's shape)."""


class SafetyOut(msgspec.Struct, kw_only=True):
    emergency: bool
    categories: list[str]
    notice: str | None
    scope_refusal: str | None = None
    """The out-of-scope topic the question was refused under (no model was asked); additive to API.md."""


class UsageOut(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int


class TimingOut(msgspec.Struct, kw_only=True):
    retrieval_ms: float | None
    generation_ms: float | None
    first_token_ms: float | None
    total_ms: float | None


class ErrorOut(msgspec.Struct, kw_only=True):
    code: str
    reason: str | None
    detail: str
    retry_after: int | None


class MessageOut(msgspec.Struct, kw_only=True):
    id: str
    conversation_id: str
    parent_id: str | None
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "failed", "streaming"]
    sources: list[SourceOut]
    grounded: bool
    safety: SafetyOut
    model: str | None
    usage: UsageOut | None
    created_at: datetime
    model_label: str | None = None
    timing: TimingOut | None = None
    error: ErrorOut | None = None
    siblings: list[str] = msgspec.field(default_factory=list)
    """Ids of this message and its alternatives (same parent), oldest first: the branch switcher."""


class ConversationOut(msgspec.Struct, kw_only=True):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    active_leaf_id: str | None


class ConversationDetail(ConversationOut, kw_only=True):
    messages: list[MessageOut]
    """The thread: the path from the first message to the active leaf, in order."""


class SearchMatch(msgspec.Struct, kw_only=True):
    """Where a search ``q`` matched a conversation's message text (additive to API.md's shape)."""

    message_id: str
    role: Literal["user", "assistant"]
    snippet: str
    """Plain text around the first match in that message: whitespace collapsed, Markdown emphasis and
    citation marks dropped, "…" where the message text was cut. Not HTML: escape it to show it."""


class ConversationItem(ConversationOut, kw_only=True, omit_defaults=True):
    """A conversation in a list; ``match`` only when a search matched one of its messages."""

    match: SearchMatch | None = None


class ConversationPage(msgspec.Struct, kw_only=True):
    items: list[ConversationItem]
    next_cursor: str | None


class ConversationCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None


class ConversationUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title


class MessageCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``content`` empty with ``parent_id`` of a user message regenerates that question's answer.

    ``edit_of``: the new question replaces that user message in a sibling branch (same parent).
    Without ``parent_id`` the question continues the conversation's active branch.
    """

    content: str = ""
    conversation_id: Id | None = None
    parent_id: Id | None = None
    edit_of: Id | None = None
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """The model to answer with (a name of ``GET /api/v1/chat/models``); none: the default. Additive to API.md."""


class BranchSwitch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message_id: Id


class TurnOut(msgspec.Struct, kw_only=True):
    conversation_id: str
    user_message: MessageOut
    message: MessageOut


class BudgetOut(msgspec.Struct, kw_only=True):
    limit: int | None
    """None: unlimited."""
    remaining: int | None
    used: int
    resets_at: datetime


class LimitsOut(msgspec.Struct, kw_only=True):
    """``GET /api/v1/chat/limits``: questions this hour and model tokens today."""

    messages: BudgetOut
    tokens: BudgetOut


class AnswerEventOut(msgspec.Struct, kw_only=True):
    """One Server-Sent Event of an answer, as the API documents the ``text/event-stream`` answer."""

    event: Literal["meta", "sources", "token", "done", "error"]
    data: str
    """JSON: ``meta`` {conversation_id, conversation, user_message, message}, ``sources`` {sources},
    ``token`` {text}, ``done`` {message}, ``error`` a problem object."""


class GraphOut(msgspec.Struct, kw_only=True):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


def message_out(message: Message, *, siblings: list[str] | None = None) -> MessageOut:
    usage = message.usage
    timing = message.timing
    error = message.error
    return MessageOut(
        id=str(message.id),
        conversation_id=message.conversation_id,
        parent_id=message.parent_id,
        role=message.role,
        content=message.content,
        status=message.status,
        sources=[
            SourceOut(
                number=source.number,
                document_id=source.document_id,
                chunk_id=source.chunk_id,
                title=source.title,
                page=source.page,
                section=source.section,
                snippet=source.snippet,
                score=source.score,
                text=source.text,
            )
            for source in message.sources
        ],
        grounded=message.grounded,
        safety=SafetyOut(
            emergency=message.safety.emergency,
            categories=list(message.safety.categories),
            notice=message.safety.notice,
            scope_refusal=message.safety.scope_refusal,
        ),
        model=message.model,
        usage=UsageOut(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens) if usage else None,
        created_at=message.created_at,
        model_label=message.model_label,
        timing=TimingOut(
            retrieval_ms=timing.retrieval_ms,
            generation_ms=timing.generation_ms,
            first_token_ms=timing.first_token_ms,
            total_ms=timing.total_ms,
        )
        if timing
        else None,
        error=ErrorOut(code=error.code, reason=error.reason, detail=error.detail, retry_after=error.retry_after)
        if error
        else None,
        siblings=siblings or [str(message.id)],
    )


def _conversation_fields(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "last_message_at": conversation.last_message_at,
        "active_leaf_id": conversation.active_leaf_id,
    }


def conversation_out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(**_conversation_fields(conversation))


def conversation_item(conversation: Conversation, match: SearchMatch | None = None) -> ConversationItem:
    return ConversationItem(**_conversation_fields(conversation), match=match)


def to_builtins(value: Any) -> Any:
    """JSON-able builtins of a schema object (for SSE payloads and exports)."""
    return msgspec.to_builtins(value)

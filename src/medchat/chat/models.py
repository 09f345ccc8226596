"""The chat module's MongoDB documents: conversations and the messages of their trees.

Kept to the portable subset the embedded store serves (see ARCHITECTURE.md): references are strings,
embedded lists are written whole (``$set``, never ``$push``), and reads go by conversation id, never
through big sorts. The provenance of an answer (what was retrieved, what generated it) lives on the
assistant message itself, so one read of a conversation's messages rebuilds its graph.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from medchat.platform.clock import utcnow

Role = Literal["user", "assistant"]
Status = Literal["complete", "failed", "streaming"]
TitleSource = Literal["default", "heuristic", "model", "user"]

DEFAULT_TITLE = "New conversation"


async def set_fields(document: type[Document], query: dict[str, Any], values: dict[str, Any]) -> int:
    """``$set`` of ``values`` on the one document matching ``query``; returns how many matched (0 or 1).

    Any BSON value keeps its type (datetimes, booleans: the embedded store too, see
    ``medchat.platform.nx_server``); extra conditions in ``query`` make it a conditional write.
    """
    result = await document.get_pymongo_collection().update_one(query, {"$set": values})
    return result.matched_count


async def replace_where(document: Document, **conditions: Any) -> bool:
    """Write the whole document back only if it still matches ``conditions``; returns whether it did.

    A compare-and-set for writes that change many fields at once, e.g. finishing an answer only while
    it is still ``streaming`` (a stop or a crash clean-up may have finished it first).
    """
    values = document.model_dump(by_alias=True, exclude={"id", "revision_id"})
    result = await type(document).get_pymongo_collection().replace_one({"_id": document.id, **conditions}, values)
    return result.matched_count > 0


class Source(BaseModel):
    """One retrieved passage an answer may cite as ``[number]``."""

    number: int
    document_id: str
    chunk_id: str | None = None
    title: str
    page: int | None = None
    section: str | None = None
    snippet: str = ""
    score: float = 0.0
    text: str = ""
    """The whole passage as retrieved (the citation panel shows it); empty on answers stored before it was kept."""


class Safety(BaseModel):
    emergency: bool = False
    categories: list[str] = Field(default_factory=list)
    notice: str | None = None
    scope_refusal: str | None = None
    """The out-of-scope topic (``out_of_scope_topics``) the question falls under: answered with the refusal."""


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Timing(BaseModel):
    """Milliseconds. ``first_token_ms`` counts from the start of generation, not of the request."""

    retrieval_ms: float | None = None
    generation_ms: float | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None


class MessageError(BaseModel):
    """Why an answer failed, in words for the user; ``code`` is the API problem code."""

    code: str
    reason: str | None = None
    detail: str
    retry_after: int | None = None


class RetrievedRef(BaseModel):
    chunk_id: str | None = None
    document_id: str
    score: float


class QuestionRewrite(BaseModel):
    """How a follow-up question was made standalone before it was searched."""

    method: Literal["terms", "model"]
    """``terms``: the thread's topic words were put in front; ``model``: a model call rewrote it."""
    question: str
    """The question as asked (``Provenance.retrieval_query`` holds what was searched)."""
    model: str | None = None
    ms: float | None = None
    """How long the model call took (also when it failed and the topic words stood in)."""


class Provenance(BaseModel):
    """What produced an answer: the retrieval step and the generation step (graph nodes of ``/graph``)."""

    retrieval_query: str = ""
    question_rewrite: QuestionRewrite | None = None
    retrieved: list[RetrievedRef] = Field(default_factory=list)
    retrieval_available: bool = True
    provider_kind: str | None = None
    finish_reason: str | None = None


class Conversation(Document):
    owner_id: str
    title: str = DEFAULT_TITLE
    title_source: TitleSource = "default"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_message_at: datetime | None = None
    active_leaf_id: str | None = None
    """The newest message of the branch the user is looking at; the thread is the path to it."""

    class Settings:
        name = "chat_conversations"
        indexes = [  # noqa: RUF012 - Beanie reads this class attribute
            pymongo.IndexModel([("owner_id", pymongo.ASCENDING), ("updated_at", pymongo.DESCENDING)]),
        ]


class Message(Document):
    conversation_id: str
    owner_id: str
    parent_id: str | None = None
    role: Role
    content: str = ""
    status: Status = "complete"
    sources: list[Source] = Field(default_factory=list)
    grounded: bool = False
    safety: Safety = Field(default_factory=Safety)
    model: str | None = None
    model_label: str | None = None
    usage: TokenUsage | None = None
    timing: Timing | None = None
    error: MessageError | None = None
    provenance: Provenance | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    writer_instance: str | None = None
    """The instance (``platform.instances``) writing an answer while it is ``streaming``; None on older answers."""

    class Settings:
        name = "chat_messages"
        indexes = [  # noqa: RUF012 - Beanie reads this class attribute
            pymongo.IndexModel([("conversation_id", pymongo.ASCENDING)]),
            pymongo.IndexModel([("owner_id", pymongo.ASCENDING)]),
            pymongo.IndexModel([("status", pymongo.ASCENDING), ("created_at", pymongo.ASCENDING)]),
        ]

    @property
    def key(self) -> str:
        return str(self.id)

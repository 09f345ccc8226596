"""Conversations: list, search, read, rename, delete, branch switching, export and provenance graph.

No HTTP here. Every read is scoped by ``owner_id``: another user's conversation is ``NotFound``,
exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId

from medchat.chat.models import DEFAULT_TITLE, Conversation, Message, MessageError, replace_where, set_fields, utcnow
from medchat.chat.schemas import (
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    GraphOut,
    MessageOut,
    conversation_out,
    message_out,
    to_builtins,
)
from medchat.chat.tree import MessageTree
from medchat.platform.errors import NotFound, ValidationFailed

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_SEARCH_CHARS = 100
EXPORT_FORMAT = "medchat.conversation.v1"

ORPHANED_DETAIL = "This answer was interrupted (the server stopped while writing it). Retry to get a full answer."


def parse_id(value: str | None) -> PydanticObjectId | None:
    """The ObjectId in ``value``, or None when it is not one (callers then answer 404)."""
    if not value:
        return None
    try:
        return PydanticObjectId(ObjectId(value))
    except (InvalidId, TypeError):
        return None


def encode_cursor(conversation: Conversation) -> str:
    raw = json.dumps([conversation.updated_at.isoformat(), str(conversation.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, ObjectId]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        updated_at, identifier = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(updated_at), ObjectId(identifier)
    except (ValueError, TypeError, InvalidId, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed("cursor: not a cursor this API returned") from None


@dataclass(frozen=True, slots=True)
class Export:
    filename: str
    media_type: str
    body: str


class ConversationService:
    def __init__(self, *, stale_after: timedelta = timedelta(minutes=10)) -> None:
        self._stale_after = stale_after

    # --- conversations -----------------------------------------------------------------------
    async def create(self, owner_id: str, *, title: str | None = None) -> Conversation:
        title = clean_title(title) if title else None
        conversation = Conversation(
            owner_id=owner_id, title=title or DEFAULT_TITLE, title_source="user" if title else "default"
        )
        await conversation.insert()
        return conversation

    async def get(self, owner_id: str, conversation_id: str | None) -> Conversation:
        object_id = parse_id(conversation_id)
        conversation = None
        if object_id is not None:
            conversation = await Conversation.find_one({"_id": object_id, "owner_id": owner_id})
        if conversation is None:
            raise NotFound("No such conversation.")
        return conversation

    async def list(
        self, owner_id: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None, q: str | None = None
    ) -> ConversationPage:
        """Newest activity first; ``q`` matches titles case-insensitively (a plain substring, not a pattern)."""
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        query: dict[str, Any] = {"owner_id": owner_id}
        if q and q.strip():
            query["title"] = {"$regex": re.escape(q.strip()[:MAX_SEARCH_CHARS]), "$options": "i"}
        if cursor:
            updated_at, identifier = decode_cursor(cursor)
            query["$or"] = [
                {"updated_at": {"$lt": updated_at}},
                {"updated_at": updated_at, "_id": {"$lt": identifier}},
            ]
        found = await Conversation.find(query).sort([("updated_at", -1), ("_id", -1)]).limit(limit + 1).to_list()
        more = len(found) > limit
        items = found[:limit]
        return ConversationPage(
            items=[conversation_out(item) for item in items],
            next_cursor=encode_cursor(items[-1]) if more and items else None,
        )

    async def rename(self, owner_id: str, conversation_id: str, *, title: str) -> Conversation:
        conversation = await self.get(owner_id, conversation_id)
        cleaned = clean_title(title)
        if not cleaned:
            raise ValidationFailed("title: must not be empty")
        now = utcnow()
        conversation.title, conversation.title_source, conversation.updated_at = cleaned, "user", now
        await replace_where(conversation)
        return conversation

    async def delete(self, owner_id: str, conversation_id: str) -> None:
        conversation = await self.get(owner_id, conversation_id)
        await Message.find({"conversation_id": str(conversation.id), "owner_id": owner_id}).delete()
        await conversation.delete()
        log.info("conversation deleted", conversation_id=str(conversation.id))

    # --- messages and threads ----------------------------------------------------------------
    async def messages(self, conversation: Conversation) -> list[Message]:
        """Every message of the conversation (all branches); orphaned ``streaming`` ones become ``failed``."""
        messages = await Message.find({"conversation_id": str(conversation.id)}).to_list()
        return await self._fix_orphans(messages)

    async def messages_of(self, owner_id: str, conversation_id: str) -> list[Message]:
        """The owner's messages of a conversation, read without the conversation itself (in parallel with it)."""
        messages = await Message.find({"conversation_id": conversation_id, "owner_id": owner_id}).to_list()
        return await self._fix_orphans(messages)

    async def _fix_orphans(self, messages: list[Message]) -> list[Message]:
        cutoff = utcnow() - self._stale_after
        for message in messages:
            if message.status == "streaming" and message.created_at < cutoff:
                await mark_orphaned(message)
        return messages

    async def tree(self, conversation: Conversation) -> MessageTree:
        return MessageTree(await self.messages(conversation))

    async def get_message(self, owner_id: str, message_id: str | None) -> Message:
        object_id = parse_id(message_id)
        message = None
        if object_id is not None:
            message = await Message.find_one({"_id": object_id, "owner_id": owner_id})
        if message is None:
            raise NotFound("No such message.")
        return message

    async def siblings(self, message: Message) -> list[str]:
        """Ids of ``message`` and its alternatives (same parent), oldest first."""
        same_parent = await Message.find(
            {"conversation_id": message.conversation_id, "parent_id": message.parent_id}
        ).to_list()
        same_parent.sort(key=lambda item: (item.created_at, str(item.id)))
        return [str(item.id) for item in same_parent] or [str(message.id)]

    async def detail(self, owner_id: str, conversation_id: str) -> ConversationDetail:
        conversation = await self.get(owner_id, conversation_id)
        return detail_of(conversation, await self.tree(conversation))

    async def switch_branch(self, owner_id: str, conversation_id: str, *, message_id: str) -> ConversationDetail:
        """Show the branch through ``message_id``: the active leaf becomes its newest descendant leaf."""
        conversation = await self.get(owner_id, conversation_id)
        tree = await self.tree(conversation)
        if tree.get(message_id) is None:
            raise NotFound("No such message in this conversation.")
        leaf = tree.latest_leaf(message_id)
        assert leaf is not None
        await set_fields(Conversation, {"_id": conversation.id}, {"active_leaf_id": str(leaf.id)})
        conversation.active_leaf_id = str(leaf.id)
        return detail_of(conversation, tree)

    # --- export and graph --------------------------------------------------------------------
    async def export(self, owner_id: str, conversation_id: str, *, format: str) -> Export:
        conversation = await self.get(owner_id, conversation_id)
        tree = await self.tree(conversation)
        stem = f"medchat-{slug(conversation.title)}-{conversation.id}"
        if format == "json":
            body = json.dumps(export_document(conversation, tree), ensure_ascii=False, indent=2)
            return Export(f"{stem}.json", "application/json", body)
        if format == "md":
            return Export(f"{stem}.md", "text/markdown; charset=utf-8", export_markdown(conversation, tree))
        raise ValidationFailed("format: must be md or json")

    async def graph(self, owner_id: str, conversation_id: str) -> GraphOut:
        conversation = await self.get(owner_id, conversation_id)
        return provenance_graph(await self.tree(conversation))

    # --- account-wide (event handlers) -------------------------------------------------------
    async def delete_user_data(self, user_id: str) -> int:
        conversations = await Conversation.find({"owner_id": user_id}).to_list()
        await Message.find({"owner_id": user_id}).delete()
        await Conversation.find({"owner_id": user_id}).delete()
        log.info("user's conversations deleted", user_id=user_id, conversations=len(conversations))
        return len(conversations)

    async def export_user_data(self, user_id: str) -> dict[str, Any]:
        conversations = await Conversation.find({"owner_id": user_id}).to_list()
        messages = await Message.find({"owner_id": user_id}).to_list()
        by_conversation: dict[str, list[Message]] = {}
        for message in messages:
            by_conversation.setdefault(message.conversation_id, []).append(message)
        exported = [
            export_document(conversation, MessageTree(by_conversation.get(str(conversation.id), [])))
            for conversation in sorted(conversations, key=lambda item: item.created_at)
        ]
        return {"chat": {"conversations": exported}}

    async def fail_orphaned(self) -> int:
        """Mark every answer left ``streaming`` by a dead process (older than the stale limit) as failed."""
        cutoff = utcnow() - self._stale_after
        stale = await Message.find({"status": "streaming", "created_at": {"$lt": cutoff}}).to_list()
        for message in stale:
            await mark_orphaned(message)
        if stale:
            log.warning("orphaned answers marked failed", count=len(stale))
        return len(stale)


async def mark_orphaned(message: Message) -> None:
    message.status = "failed"
    message.error = MessageError(code="interrupted", reason="orphaned", detail=ORPHANED_DETAIL)
    message.finished_at = utcnow()
    await replace_where(message, status="streaming")


def clean_title(title: str | None, *, limit: int = 80) -> str:
    """One line, no surrounding quotes or trailing punctuation, at most ``limit`` characters."""
    text = " ".join((title or "").split()).strip().strip("\"'`*#").strip()
    if text.lower().startswith("title:"):
        text = text[6:].strip()
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text.rstrip(".:;,")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "conversation"


def detail_of(conversation: Conversation, tree: MessageTree) -> ConversationDetail:
    thread = tree.path_to(conversation.active_leaf_id)
    base = conversation_out(conversation)
    return ConversationDetail(
        **{field: getattr(base, field) for field in base.__struct_fields__},
        messages=[message_out(message, siblings=tree.siblings(message)) for message in thread],
    )


def thread_out(conversation: Conversation, tree: MessageTree) -> list[MessageOut]:
    return [
        message_out(message, siblings=tree.siblings(message)) for message in tree.path_to(conversation.active_leaf_id)
    ]


def export_document(conversation: Conversation, tree: MessageTree) -> dict[str, Any]:
    thread = [str(message.id) for message in tree.path_to(conversation.active_leaf_id)]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "conversation": to_builtins(conversation_out(conversation)),
        "thread": thread,
        "messages": [to_builtins(message_out(m, siblings=tree.siblings(m))) for m in tree.ordered()],
        "graph": to_builtins(provenance_graph(tree)),
    }


def export_markdown(conversation: Conversation, tree: MessageTree) -> str:
    thread = tree.path_to(conversation.active_leaf_id)
    lines = [
        f"# {conversation.title}",
        "",
        f"Exported from medchat on {utcnow():%Y-%m-%d %H:%M} UTC. "
        f"Started {conversation.created_at:%Y-%m-%d %H:%M} UTC.",
    ]
    other = len(tree) - len(thread)
    if other > 0:
        lines.append(
            f"This is the branch shown in the app; {other} message(s) of other branches are in the JSON export."
        )
    for message in thread:
        when = f"{message.created_at:%Y-%m-%d %H:%M}"
        lines.append("")
        if message.role == "user":
            lines += [f"## You · {when}", "", message.content]
            continue
        label = message.model_label or message.model or "medchat"
        lines += [f"## medchat · {label} · {when}", ""]
        if message.safety.emergency and message.safety.notice:
            lines += [f"> **Emergency:** {message.safety.notice}", ""]
        if message.content:
            lines.append(message.content)
        if message.status == "failed" and message.error:
            lines += ["", f"*This answer failed: {message.error.detail}*"]
        if message.sources:
            lines += ["", "**Sources**", ""]
            for source in message.sources:
                page = f", page {source.page}" if source.page is not None else ""
                snippet = " ".join(source.snippet.split())
                lines.append(f"{source.number}. {source.title}{page} — “{snippet}” (score {source.score:.2f})")
    return "\n".join(lines).rstrip() + "\n"


def provenance_graph(tree: MessageTree) -> GraphOut:
    """Nodes ``user`` / ``retrieval`` / ``generation`` and edges ``retrieved``, ``grounded``, ``answered_by``."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for message in tree.ordered():
        identifier = str(message.id)
        if message.role == "user":
            nodes.append(
                {
                    "id": identifier,
                    "type": "user",
                    "message_id": identifier,
                    "created_at": message.created_at.isoformat(),
                    "emergency": message.safety.emergency,
                }
            )
            continue
        provenance = message.provenance
        timing = message.timing
        retrieval_id = f"{identifier}:retrieval"
        generation_id = f"{identifier}:generation"
        nodes.append(
            {
                "id": retrieval_id,
                "type": "retrieval",
                "message_id": identifier,
                "query": provenance.retrieval_query if provenance else "",
                "available": provenance.retrieval_available if provenance else False,
                "passages": [ref.model_dump() for ref in provenance.retrieved] if provenance else [],
                "ms": timing.retrieval_ms if timing else None,
            }
        )
        nodes.append(
            {
                "id": generation_id,
                "type": "generation",
                "message_id": identifier,
                "model": message.model,
                "provider": provenance.provider_kind if provenance else None,
                "status": message.status,
                "finish_reason": provenance.finish_reason if provenance else None,
                "usage": message.usage.model_dump() if message.usage else None,
                "ms": timing.generation_ms if timing else None,
                "first_token_ms": timing.first_token_ms if timing else None,
                "grounded": message.grounded,
            }
        )
        if message.parent_id and message.parent_id in tree.by_id:
            edges.append({"from": message.parent_id, "to": retrieval_id, "relation": "retrieved"})
            edges.append({"from": message.parent_id, "to": generation_id, "relation": "answered_by"})
        edges.append({"from": retrieval_id, "to": generation_id, "relation": "grounded"})
    return GraphOut(nodes=nodes, edges=edges)


def conversation_summary(conversation: Conversation) -> ConversationOut:
    return conversation_out(conversation)

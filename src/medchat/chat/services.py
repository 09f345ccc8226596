"""Conversations: list, search, read, rename, delete, branch switching, export and provenance graph.

No HTTP here. Every read is scoped by ``owner_id``: another user's conversation is ``NotFound``,
exactly like one that does not exist. Creating, reading (``detail``, ``graph``), renaming, exporting
and deleting a conversation are audited here, once, whoever calls (API, pages, CLI): ``actor`` is the
owner unless given, ``ip`` where the request came from.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import structlog
from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING

from medchat.chat.exports import Export, export_document, export_markdown, provenance_graph, slug
from medchat.chat.models import DEFAULT_TITLE, Conversation, Message, MessageError, replace_where, set_fields
from medchat.chat.schemas import (
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    GraphOut,
    SearchMatch,
    conversation_item,
    conversation_out,
    message_out,
)
from medchat.chat.tree import MessageTree
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import NotFound, ValidationFailed
from medchat.platform.instances import InstanceHeartbeat
from medchat.platform.pagination import paginate

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_SEARCH_CHARS = 100
MAX_SEARCHED_MESSAGES = 500
"""At most this many matching messages (the newest) are read per search: the work stays bounded however
much a user has written; older matches are still found by their conversation's title."""
SNIPPET_BEFORE = 60
SNIPPET_CHARS = 180

ORPHANED_DETAIL = "This answer was interrupted (the server stopped while writing it). Retry to get a full answer."


def parse_id(value: str | None) -> PydanticObjectId | None:
    """The ObjectId in ``value``, or None when it is not one (callers then answer 404)."""
    if not value:
        return None
    try:
        return PydanticObjectId(ObjectId(value))
    except (InvalidId, TypeError):
        return None


class ConversationService:
    def __init__(
        self, *, stale_after: timedelta = timedelta(minutes=10), instances: InstanceHeartbeat | None = None
    ) -> None:
        """``stale_after``: how old a ``streaming`` answer without a writer instance must be to count as
        orphaned; ``instances`` tells whose heartbeat lapsed (None: only that time rule applies)."""
        self._stale_after = stale_after
        self._instances = instances

    # --- conversations -----------------------------------------------------------------------
    async def create(
        self, owner_id: str, *, title: str | None = None, actor: str | None = None, ip: str | None = None
    ) -> ConversationOut:
        title = clean_title(title) if title else None
        conversation = Conversation(
            owner_id=owner_id, title=title or DEFAULT_TITLE, title_source="user" if title else "default"
        )
        await conversation.insert()
        await _audit("create", owner_id, str(conversation.id), actor=actor, ip=ip)
        return conversation_out(conversation)

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
        """Newest activity first. ``q`` (a plain phrase, not a pattern; case and runs of whitespace ignored)
        matches titles and the text of the owner's own questions and answers; a conversation found by its
        messages carries ``match``: the newest matching message and a snippet around the match."""
        criteria: dict[str, Any] = {"owner_id": owner_id}
        matches: dict[str, SearchMatch] = {}
        pattern = search_pattern(q)
        if pattern:
            matches = await _message_matches(owner_id, pattern)
            in_title = {"title": {"$regex": pattern, "$options": "i"}}
            found = [object_id for key in matches if (object_id := parse_id(key)) is not None]
            criteria.update({"$or": [in_title, {"_id": {"$in": found}}]} if found else in_title)
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        page = await paginate(Conversation, criteria, limit=limit, cursor=cursor, newest_by="updated_at")
        items = [conversation_item(item, matches.get(str(item.id))) for item in page.items]
        return ConversationPage(items=items, next_cursor=page.next_cursor)

    async def rename(
        self, owner_id: str, conversation_id: str, *, title: str, actor: str | None = None, ip: str | None = None
    ) -> ConversationOut:
        """A title the user chose (a model-written one never replaces it); renaming counts as activity."""
        conversation = await self.get(owner_id, conversation_id)
        cleaned = clean_title(title)
        if not cleaned:
            raise ValidationFailed("title: must not be empty")
        conversation.title, conversation.title_source, conversation.updated_at = cleaned, "user", utcnow()
        renamed = {"title": cleaned, "title_source": "user", "updated_at": conversation.updated_at}
        await set_fields(Conversation, {"_id": conversation.id}, renamed)
        await _audit("update", owner_id, conversation_id, actor=actor, ip=ip, field="title")
        return conversation_out(conversation)

    async def delete(
        self, owner_id: str, conversation_id: str, *, actor: str | None = None, ip: str | None = None
    ) -> None:
        conversation = await self.get(owner_id, conversation_id)
        await Message.find({"conversation_id": str(conversation.id), "owner_id": owner_id}).delete()
        await conversation.delete()
        log.info("conversation deleted", conversation_id=str(conversation.id))
        await _audit("delete", owner_id, conversation_id, actor=actor, ip=ip)

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
        for message in await self._orphans([m for m in messages if m.status == "streaming"]):
            await mark_orphaned(message)
        return messages

    async def _orphans(self, streaming: list[Message]) -> list[Message]:
        """The answers among ``streaming`` whose writer is gone: its instance's heartbeat has lapsed, or (an
        answer stored before writers were recorded) it is older than the stale limit. Nothing when Redis does
        not say who is alive: a live answer is never failed on a guess."""
        writers = {message.writer_instance for message in streaming if message.writer_instance}
        alive: set[str] = set()
        if writers:
            if self._instances is None:
                return []
            try:
                alive = await self._instances.alive(writers)
            except Exception as error:  # noqa: BLE001 - skip this sweep; the next one tries again
                log.warning("cannot tell which instances are alive; orphans left for now", error=str(error))
                return []
        cutoff = utcnow() - self._stale_after
        return [
            message
            for message in streaming
            if (message.writer_instance not in alive if message.writer_instance else message.created_at < cutoff)
        ]

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

    async def get_answer(self, owner_id: str, message_id: str | None) -> Message:
        """An answer (assistant message) of ``owner_id``; a question's id is ``NotFound`` like any other."""
        message = await self.get_message(owner_id, message_id)
        if message.role != "assistant":
            raise NotFound("No such answer.")
        return message

    async def siblings(self, message: Message) -> list[str]:
        """Ids of ``message`` and its alternatives (same parent), oldest first."""
        same_parent = await Message.find(
            {"conversation_id": message.conversation_id, "parent_id": message.parent_id}
        ).to_list()
        same_parent.sort(key=lambda item: (item.created_at, str(item.id)))
        return [str(item.id) for item in same_parent] or [str(message.id)]

    async def detail(
        self, owner_id: str, conversation_id: str, *, actor: str | None = None, ip: str | None = None
    ) -> ConversationDetail:
        """The conversation with its thread (audited as a ``read``)."""
        conversation = await self.get(owner_id, conversation_id)
        detail = detail_of(conversation, await self.tree(conversation))
        await _audit("read", owner_id, detail.id, actor=actor, ip=ip)
        return detail

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
    async def export(
        self, owner_id: str, conversation_id: str, *, format: str, actor: str | None = None, ip: str | None = None
    ) -> Export:
        """The conversation as a file (``md``: the thread shown; ``json``: everything), audited with its hash."""
        conversation = await self.get(owner_id, conversation_id)
        tree = await self.tree(conversation)
        stem = f"medchat-{slug(conversation.title)}-{conversation.id}"
        if format == "json":
            body = json.dumps(export_document(conversation, tree), ensure_ascii=False, indent=2)
            exported = Export(f"{stem}.json", "application/json", body)
        elif format == "md":
            exported = Export(f"{stem}.md", "text/markdown; charset=utf-8", export_markdown(conversation, tree))
        else:
            raise ValidationFailed("format: must be md or json")
        await _audit("export", owner_id, conversation_id, actor=actor, ip=ip, content=exported.body, format=format)
        return exported

    async def graph(
        self, owner_id: str, conversation_id: str, *, actor: str | None = None, ip: str | None = None
    ) -> GraphOut:
        conversation = await self.get(owner_id, conversation_id)
        graph = provenance_graph(await self.tree(conversation))
        await _audit("read", owner_id, conversation_id, actor=actor, ip=ip, view="graph")
        return graph

    # --- account-wide (the handlers of USER_DELETED and USER_EXPORT_REQUESTED) ------------------
    async def delete_owner_data(self, *, user_id: str) -> int:
        """Every conversation and message of ``user_id`` deleted; returns how many conversations."""
        conversations = await Conversation.find({"owner_id": user_id}).to_list()
        await Message.find({"owner_id": user_id}).delete()
        await Conversation.find({"owner_id": user_id}).delete()
        log.info("user's conversations deleted", user_id=user_id, conversations=len(conversations))
        return len(conversations)

    async def export_owner_data(self, *, user_id: str) -> dict[str, Any]:
        """Chat's share of the user's data: ``{"chat": {"conversations": [JSON export of each]}}``."""
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
        """Mark every answer left ``streaming`` by a dead process as failed (see ``_orphans``); returns how many."""
        orphans = await self._orphans(await Message.find({"status": "streaming"}).to_list())
        for message in orphans:
            await mark_orphaned(message)
        if orphans:
            log.warning("orphaned answers marked failed", count=len(orphans))
        return len(orphans)


def search_pattern(q: str | None) -> str | None:
    """A case-insensitive regex matching ``q`` literally (metacharacters escaped; any whitespace between
    words); None for a blank ``q``. Plain ``$regex`` works alike on MongoDB and the embedded nx-27017."""
    words = (q or "")[:MAX_SEARCH_CHARS].split()
    return r"\s+".join(re.escape(word) for word in words) or None


async def _message_matches(owner_id: str, pattern: str) -> dict[str, SearchMatch]:
    """The newest matching message of each of the owner's conversations (by conversation id), read from at
    most ``MAX_SEARCHED_MESSAGES`` matches; only ``owner_id``'s messages (the ``owner_id`` index)."""
    found = (
        await Message.find({"owner_id": owner_id, "content": {"$regex": pattern, "$options": "i"}})
        .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        .limit(MAX_SEARCHED_MESSAGES)
        .to_list()
    )
    matches: dict[str, SearchMatch] = {}
    for message in found:
        if message.owner_id != owner_id or message.conversation_id in matches:
            continue
        if (text := snippet(message.content, pattern)) is not None:
            matches[message.conversation_id] = SearchMatch(message_id=str(message.id), role=message.role, snippet=text)
    return matches


_MARKUP = re.compile(r"\*\*|__|`+|^#{1,6}\s+|^\s*>\s?|\s\[\d+(?:,\s*\d+)*\]", re.MULTILINE)


def snippet(text: str, pattern: str, *, before: int = SNIPPET_BEFORE, size: int = SNIPPET_CHARS) -> str | None:
    """About ``size`` characters of ``text`` around the first match of ``pattern``, cut at word boundaries,
    "…" where cut; Markdown emphasis, headings, quotes and citation marks dropped (kept when the query itself
    needs them). None when ``pattern`` does not match."""
    for candidate in (_MARKUP.sub("", text), text):
        plain = " ".join(candidate.split())
        found = re.search(pattern, plain, re.IGNORECASE)
        if found is not None:
            break
    else:
        return None
    start = max(0, found.start() - before)
    end = max(found.end(), min(len(plain), start + size))
    if start > 0:
        space = plain.find(" ", start, found.start())
        start = space + 1 if space != -1 else start
    if end < len(plain):
        space = plain.rfind(" ", found.end(), end)
        end = space if space != -1 else end
    return ("…" if start > 0 else "") + plain[start:end].strip() + ("…" if end < len(plain) else "")


async def _audit(
    action: str,
    owner_id: str,
    conversation_id: str,
    *,
    actor: str | None,
    ip: str | None,
    content: str | None = None,
    **details: Any,
) -> None:
    """One audit event on a conversation (ids and formats only; ``content`` is stored as its hash)."""
    await audit.record(
        action,
        actor_id=actor or owner_id,
        resource_type="conversation",
        resource_id=conversation_id,
        ip=ip,
        content=content,
        **details,
    )


async def finish(message: Message, *, status: str, **values: Any) -> None:
    """The one write that takes an answer out of ``streaming``; a no-op if something else already did."""
    message.status = status  # type: ignore[assignment]
    message.finished_at = utcnow()
    for name, value in values.items():
        setattr(message, name, value)
    await replace_where(message, status="streaming")


async def mark_orphaned(message: Message) -> None:
    error = MessageError(code="interrupted", reason="orphaned", detail=ORPHANED_DETAIL)
    await finish(message, status="failed", error=error)


def clean_title(title: str | None, *, limit: int = 80) -> str:
    """One line, no surrounding quotes or trailing punctuation, at most ``limit`` characters."""
    text = " ".join((title or "").split()).strip().strip("\"'`*#").strip()
    if text.lower().startswith("title:"):
        text = text[6:].strip()
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text.rstrip(".:;,")


def detail_of(conversation: Conversation, tree: MessageTree) -> ConversationDetail:
    thread = tree.path_to(conversation.active_leaf_id)
    base = conversation_out(conversation)
    return ConversationDetail(
        **{field: getattr(base, field) for field in base.__struct_fields__},
        messages=[message_out(message, siblings=tree.siblings(message)) for message in thread],
    )

"""Conversation services without HTTP: trees, titles, cursors, search, orphaned answers, account events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from beanie import PydanticObjectId

from medchat.chat.answering import heuristic_title
from medchat.chat.models import Conversation, Message
from medchat.chat.services import ConversationService, clean_title
from medchat.chat.tree import MessageTree
from medchat.platform.clock import utcnow
from medchat.platform.errors import NotFound, ValidationFailed
from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED
from medchat.runtime import Runtime


def message(identifier: int, parent: int | None, role: str = "user", minutes: int = 0) -> Message:
    return Message(
        id=PydanticObjectId(f"{identifier:024x}"),
        conversation_id="c",
        owner_id="u",
        parent_id=f"{parent:024x}" if parent is not None else None,
        role=role,  # type: ignore[arg-type]
        content=f"m{identifier}",
        created_at=utcnow() + timedelta(minutes=minutes),
    )


def key(identifier: int) -> str:
    return f"{identifier:024x}"


def test_tree_threads_branches_and_siblings(runtime: Runtime) -> None:
    # q1 -> a1 -> q2 -> a2 ; q1' (edit of q1) -> a1' ; a2' (regenerated)
    tree = MessageTree(
        [
            message(1, None, "user", 0),
            message(2, 1, "assistant", 1),
            message(3, 2, "user", 2),
            message(4, 3, "assistant", 3),
            message(5, None, "user", 4),
            message(6, 5, "assistant", 5),
            message(7, 3, "assistant", 6),
        ]
    )
    assert [str(m.id) for m in tree.path_to(key(4))] == [key(1), key(2), key(3), key(4)]
    assert tree.siblings(tree.by_id[key(1)]) == [key(1), key(5)]
    assert tree.siblings(tree.by_id[key(7)]) == [key(4), key(7)]
    assert str(tree.latest_leaf(key(1)).id) == key(7)
    assert str(tree.latest_leaf(None).id) == key(6)
    assert [str(m.id) for m in tree.path_to("unknown")] == [key(5), key(6)]
    assert [str(m.id) for m in tree.ordered()] == [key(i) for i in (1, 2, 3, 4, 7, 5, 6)]


def test_titles_are_one_clean_line() -> None:
    assert clean_title('  "Blood pressure targets."  ') == "Blood pressure targets"
    assert clean_title("Title: Statins\nand you") == "Statins and you"
    assert len(clean_title("word " * 100)) <= 80
    assert heuristic_title("What is the normal blood pressure for an adult woman over sixty?") == (
        "What is the normal blood pressure for an…"
    )
    assert heuristic_title("Asthma?") == "Asthma?"


async def test_a_foreign_cursor_is_a_validation_error(runtime: Runtime) -> None:
    with pytest.raises(ValidationFailed):
        await ConversationService().list("owner", cursor="not-a-cursor")


async def test_list_search_is_literal_and_case_insensitive(runtime: Runtime) -> None:
    service = ConversationService()
    for title in ("Asthma in children", "ASTHMA inhalers", "Diabetes (type 2)", "Gout"):
        await service.create("owner", title=title)
    await service.create("someone-else", title="Asthma too")
    page = await service.list("owner", q="asthma")
    assert sorted(item.title for item in page.items) == ["ASTHMA inhalers", "Asthma in children"]
    assert [item.title for item in (await service.list("owner", q="(type")).items] == ["Diabetes (type 2)"]
    assert (await service.list("owner", q=".*")).items == []


async def test_cursor_pages_through_everything_once(runtime: Runtime) -> None:
    service = ConversationService()
    created = [await service.create("owner", title=f"Conversation {n}") for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list("owner", limit=2, cursor=cursor)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [c.id for c in reversed(created)]


async def test_orphaned_streaming_answers_become_failed(runtime: Runtime) -> None:
    service = ConversationService(stale_after=timedelta(minutes=10))
    conversation = await service.create("owner")
    old = Message(
        conversation_id=str(conversation.id),
        owner_id="owner",
        role="assistant",
        status="streaming",
        created_at=utcnow() - timedelta(minutes=30),
    )
    fresh = Message(conversation_id=str(conversation.id), owner_id="owner", role="assistant", status="streaming")
    await old.insert()
    await fresh.insert()
    assert await service.fail_orphaned() == 1
    stored = await Message.get(old.id)
    assert stored is not None and stored.status == "failed" and stored.error is not None
    assert stored.error.code == "interrupted"
    assert (await Message.get(fresh.id)).status == "streaming"  # type: ignore[union-attr]


async def test_another_owner_sees_not_found(runtime: Runtime) -> None:
    service = ConversationService()
    conversation = await service.create("owner", title="Mine")
    with pytest.raises(NotFound):
        await service.get("intruder", str(conversation.id))
    with pytest.raises(NotFound):
        await service.get("owner", "not-an-id")


async def test_account_events_delete_and_export_chat_data(runtime: Runtime) -> None:
    events = runtime.events
    service = ConversationService()
    conversation = await service.create("leaving", title="Private")
    await Message(conversation_id=str(conversation.id), owner_id="leaving", role="user", content="hello").insert()
    kept = await service.create("staying", title="Kept")

    exported = await events.publish(USER_EXPORT_REQUESTED, user_id="leaving")
    chat_part = next(part for part in exported if isinstance(part, dict) and "chat" in part)["chat"]
    assert [c["conversation"]["title"] for c in chat_part["conversations"]] == ["Private"]
    assert chat_part["conversations"][0]["messages"][0]["content"] == "hello"

    await events.publish(USER_DELETED, user_id="leaving")
    assert await Conversation.find({"owner_id": "leaving"}).to_list() == []
    assert await Message.find({"owner_id": "leaving"}).to_list() == []
    assert await Conversation.get(PydanticObjectId(kept.id)) is not None

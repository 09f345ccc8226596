"""What the store really holds: times as datetimes and flags as booleans, written by the real pipeline and
service (the embedded nx-27017 once stored a ``$set`` datetime as a string and a boolean as ``1``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId

from medchat.chat.models import Conversation, Message
from medchat.chat.schemas import MessageCreate
from medchat.chat.services import ConversationService
from medchat.runtime import Runtime
from tests.support.fake_retriever import FakeRetriever


@dataclass(frozen=True)
class Caller:
    id: str
    is_admin: bool = False


async def test_times_and_flags_keep_their_types_in_the_store(runtime: Runtime) -> None:
    runtime.retriever = FakeRetriever()  # passages to cite: the answers are grounded
    engine = runtime.chat_engine
    assert engine is not None
    caller = Caller(f"owner-{uuid.uuid4().hex[:8]}")
    first = await engine.ask(caller, MessageCreate(content="What is hypertension?"))
    await first.wait()
    conversation_id = first.meta.conversation.id
    # A follow-up moves the conversation's active leaf and times with a $set; renaming does too.
    follow_up = await engine.ask(caller, MessageCreate(content="And its risks?", conversation_id=conversation_id))
    await follow_up.wait()
    renamed = await ConversationService().rename(caller.id, conversation_id, title="Blood pressure")

    conversation = await Conversation.get_pymongo_collection().find_one({"_id": ObjectId(conversation_id)})
    assert conversation is not None
    for field in ("created_at", "updated_at", "last_message_at"):
        assert isinstance(conversation[field], datetime), (field, conversation[field])
    assert conversation["updated_at"].replace(tzinfo=None) == renamed.updated_at.replace(tzinfo=None)
    assert conversation["active_leaf_id"] == follow_up.message_id
    assert conversation["title"] == "Blood pressure"

    answer = await Message.get_pymongo_collection().find_one({"_id": ObjectId(follow_up.message_id)})
    assert answer is not None
    assert answer["status"] == "complete"
    assert isinstance(answer["finished_at"], datetime), answer["finished_at"]
    assert answer["grounded"] is True
    question = await Message.get_pymongo_collection().find_one({"_id": ObjectId(follow_up.meta.user_message.id)})
    assert question is not None
    assert question["grounded"] is False and question["safety"]["emergency"] is False

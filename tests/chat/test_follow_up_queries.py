"""Follow-up questions are searched made standalone: by the topic words of the thread, or by one model call."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.chat.answering.queries import is_follow_up, standalone_query
from medchat.settings import Settings
from tests.support.accounts import ChatUser, register
from tests.support.fake_llm import FakeLLMServer

API = "/api/v1/chat"
FIRST = "What is gout?"
FOLLOW_UP = "And how is it treated?"
REWRITE = "How is gout treated?"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("and how is it treated?", "gout: and how is it treated?"),
        ("What about children?", "gout: What about children?"),
        ("Who is at risk?", "gout: Who is at risk?"),
        ("And what about asthma?", "And what about asthma?"),  # a new topic stands alone
        ("How is diabetes diagnosed?", "How is diabetes diagnosed?"),
    ],
)
def test_a_follow_up_carries_the_topic_of_the_thread(question: str, expected: str) -> None:
    assert standalone_query(question, ["What is gout?"]) == expected


def test_the_topic_comes_from_the_newest_question_that_names_one() -> None:
    earlier = ["What is gout?", "What are the symptoms of kidney stones?", "And who is at risk?"]
    assert standalone_query("How is it treated?", earlier) == "kidney stones: How is it treated?"
    assert standalone_query("How is it treated?", []) == "How is it treated?"


def test_pointing_back_or_naming_no_topic_makes_a_follow_up() -> None:
    assert is_follow_up("Is it contagious?")
    assert is_follow_up("what are the side effects?")
    assert not is_follow_up("Is gout contagious?")


async def ask(
    client: AsyncTestClient[Litestar], user: ChatUser, content: str, conversation_id: str | None = None
) -> Any:
    body: dict[str, Any] = {"content": content}
    if conversation_id:
        body["conversation_id"] = conversation_id
    response = await client.post(f"{API}/messages", json=body, headers=user.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def retrieval_nodes(client: AsyncTestClient[Litestar], user: ChatUser, conversation_id: str) -> list[dict]:
    graph = (await client.get(f"{API}/conversations/{conversation_id}/graph", headers=user.headers)).json()
    return [node for node in graph["nodes"] if node["type"] == "retrieval"]


async def test_without_a_model_the_follow_up_is_searched_with_the_threads_topic(
    client: AsyncTestClient[Litestar],
) -> None:
    user = await register(client)
    first = await ask(client, user, FIRST)
    await ask(client, user, FOLLOW_UP, first["conversation_id"])
    before, after = await retrieval_nodes(client, user, first["conversation_id"])
    assert before["query"] == FIRST and before["question_rewrite"] is None
    assert after["query"] == f"gout: {FOLLOW_UP}"
    assert after["question_rewrite"]["method"] == "terms"
    assert after["question_rewrite"]["question"] == FOLLOW_UP


async def test_with_a_model_one_short_call_rewrites_the_follow_up(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    def reply(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        return REWRITE if "Rewrite the last question" in prompt and not body.get("stream") else "It depends [1]."

    fake_llm.reply = reply
    user = await register(remote_client)
    first = await ask(remote_client, user, FIRST)
    await ask(remote_client, user, FOLLOW_UP, first["conversation_id"])
    rewrites = [r.body for r in fake_llm.chat_requests if r.body and "Rewrite the last" in str(r.body["messages"])]
    assert len(rewrites) == 1  # the first question stands alone: no call for it
    assert FIRST in rewrites[0]["messages"][-1]["content"]
    node = (await retrieval_nodes(remote_client, user, first["conversation_id"]))[-1]
    assert node["query"] == REWRITE
    assert node["question_rewrite"]["method"] == "model"
    assert node["question_rewrite"]["model"] == "fake/test-model"
    assert node["question_rewrite"]["ms"] >= 0


async def test_a_failing_rewrite_falls_back_to_the_topic_words(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    first = await ask(remote_client, user, FIRST)
    fake_llm.fail_with("status_500", times=2)  # the rewrite (and its one retry) fail; the answer goes through
    answer = await ask(remote_client, user, FOLLOW_UP, first["conversation_id"])
    assert answer["message"]["status"] == "complete"
    node = (await retrieval_nodes(remote_client, user, first["conversation_id"]))[-1]
    assert node["query"] == f"gout: {FOLLOW_UP}"
    assert node["question_rewrite"]["method"] == "terms"


async def test_the_setting_turns_follow_up_queries_off(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings.model_copy(update={"chat_follow_up_queries": "off"}))) as client:
        user = await register(client)
        first = await ask(client, user, FIRST)
        await ask(client, user, FOLLOW_UP, first["conversation_id"])
        node = (await retrieval_nodes(client, user, first["conversation_id"]))[-1]
        assert node["query"] == FOLLOW_UP and node["question_rewrite"] is None

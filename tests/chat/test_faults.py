"""Answers when the model fails part-way, against the real HTTP fake model (``tests.support.fake_llm``).

An answer is stored ``complete`` only when the model said it had finished. A response that just
stops (no ``finish_reason``, no ``[DONE]``) is an interrupted answer: stored ``failed`` with the text
that came, the question kept, the client told with ``llm_unavailable`` / ``reason: interrupted``, and
the usual retry (regenerate from the question) offered.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import ChatUser, register
from tests.support.fake_llm import FakeLLMServer, split_tokens
from tests.support.sse import parse_sse

API = "/api/v1/chat"
QUESTION = "What blood pressure is too high?"
REPLY = "Blood pressure above 140/90 mmHg is raised [1]."


async def stored_messages(client: AsyncTestClient[Litestar], user: ChatUser, conversation_id: str) -> list[Any]:
    response = await client.get(f"{API}/conversations/{conversation_id}", headers=user.headers)
    assert response.status_code == 200
    return response.json()["messages"]


async def test_a_model_answering_500_stores_the_answer_failed_and_keeps_the_question(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    fake_llm.fail_with("status_500")

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 503
    problem = response.json()
    assert (problem["code"], problem["reason"]) == ("llm_unavailable", "upstream_error")
    question, answer = await stored_messages(remote_client, user, problem["conversation_id"])
    assert (question["content"], question["status"]) == (QUESTION, "complete")
    assert answer["status"] == "failed" and answer["error"]["code"] == "llm_unavailable"


async def test_a_stream_that_stops_without_finishing_is_stored_failed_with_its_partial_text(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    fake_llm.cut_after_tokens = 2
    fake_llm.fail_with("end_stream")

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 503, response.text
    problem = response.json()
    assert (problem["code"], problem["reason"]) == ("llm_unavailable", "interrupted")
    assert problem["retry"] == {"conversation_id": problem["conversation_id"], "parent_id": problem["user_message_id"]}
    question, answer = await stored_messages(remote_client, user, problem["conversation_id"])
    assert question["content"] == QUESTION
    assert answer["status"] == "failed"
    assert answer["content"] == "".join(split_tokens(REPLY)[:2]).strip(), "the partial text is kept"
    assert answer["error"]["reason"] == "interrupted"

    fake_llm.fail_with(None)
    retry = await remote_client.post(
        f"{API}/messages",
        json={"conversation_id": problem["conversation_id"], "parent_id": problem["user_message_id"]},
        headers=user.headers,
    )
    assert retry.status_code == 201 and retry.json()["message"]["status"] == "complete"


async def test_the_event_stream_says_a_stopped_stream_was_interrupted(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    fake_llm.cut_after_tokens = 2
    fake_llm.fail_with("end_stream")

    response = await remote_client.post(
        f"{API}/messages", json={"content": QUESTION}, headers={**user.headers, "Accept": "text/event-stream"}
    )

    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names.count("token") == 2 and names[-1] == "error" and "done" not in names
    problem = events[-1][1]
    assert (problem["code"], problem["reason"]) == ("llm_unavailable", "interrupted")
    messages = await stored_messages(remote_client, user, events[0][1]["conversation_id"])
    assert [m["status"] for m in messages] == ["complete", "failed"]

"""Grounded answers through the real pipeline: documents ingested for real, passages retrieved for real,
the answer written by the fake OpenAI-compatible server; citations checked against what the model was given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.settings import Settings
from tests.support.accounts import ChatUser, register, sign_in_browser
from tests.support.documents import upload, wait_until_final
from tests.support.fake_llm import FakeLLMServer
from tests.support.fake_retriever import FakeRetriever

API = "/api/v1/chat"
SOURCES = {
    "warfarin.txt": "Warfarin and cranberry juice. Patients taking warfarin should avoid large amounts of "
    "cranberry juice because it can raise the INR and the risk of bleeding.",
    "hand-hygiene.txt": "Hand hygiene. Clean hands with alcohol rub before and after every patient contact.",
    "sharps.txt": "Sharps disposal. Place used needles in the yellow sharps bin immediately after use.",
}
QUESTION = "Can patients on warfarin drink cranberry juice?"


async def ingest(client: AsyncTestClient[Litestar], user: ChatUser, files: dict[str, str]) -> list[str]:
    """Upload ``files`` as ``user``'s private documents and wait until the worker has indexed them."""
    ids = [(await upload(client, user.headers, text.encode(), filename=name))["id"] for name, text in files.items()]
    for document_id in ids:
        document = await wait_until_final(client, user.headers, document_id)
        assert document["status"] == "ready", document["error"]
    return ids


@pytest.fixture
async def grounded_client(remote_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A remote-model app whose search returns exactly three passages (every passage counts, best three)."""
    settings = remote_settings.model_copy(update={"search_top_k": 3, "search_score_threshold": 0.0})
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def streamed_requests(fake_llm: FakeLLMServer) -> list[dict[str, Any]]:
    return [r.body for r in fake_llm.chat_requests if r.body and r.body.get("stream")]


async def test_a_citation_of_a_passage_the_model_was_not_given_is_removed(
    grounded_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    client = grounded_client
    user = await register(client)
    document_ids = await ingest(client, user, SOURCES)
    fake_llm.reply = (
        "Large amounts of cranberry juice can raise the INR [1]. "
        "A 2019 trial confirmed it [7]. Ask the anticoagulation clinic [1][7]."
    )

    response = await client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert len(message["sources"]) == 3, "the model was given three passages"
    assert {source["document_id"] for source in message["sources"]} == set(document_ids)
    assert message["sources"][0]["title"].lower().startswith("warfarin")
    system = streamed_requests(fake_llm)[0]["messages"][0]["content"]
    assert "[1]" in system and "[3]" in system and "[4]" not in system, "numbered passages 1-3 in the prompt"

    expected = "Large amounts of cranberry juice can raise the INR [1]. A 2019 trial confirmed it. " \
        "Ask the anticoagulation clinic [1]."  # fmt: skip
    assert message["content"] == expected
    assert message["grounded"] is True
    stored = (await client.get(f"{API}/conversations/{message['conversation_id']}", headers=user.headers)).json()
    assert stored["messages"][-1]["content"] == expected
    assert "[7]" not in stored["messages"][-1]["content"]


async def test_without_passages_the_default_answers_with_a_visible_not_from_your_sources_warning(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "Cranberry juice may interact with warfarin [1]."
    user = await register(remote_client)
    message = (await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)).json()[
        "message"
    ]

    assert streamed_requests(fake_llm), "the model answered (policy warn)"
    assert "none were found" in streamed_requests(fake_llm)[0]["messages"][0]["content"], "and was told so"
    assert message["grounded"] is False
    assert message["sources"] == []
    assert message["content"] == "Cranberry juice may interact with warfarin."

    csrf = await sign_in_browser(remote_client, user)
    page = await remote_client.get(f"/chat/{message['conversation_id']}", headers=csrf)
    assert "Not backed by your organisation" in page.text


@pytest.fixture
async def refusing_client(remote_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """``ungrounded_policy=refuse``, and a threshold no passage of an unrelated source reaches."""
    settings = remote_settings.model_copy(update={"ungrounded_policy": "refuse", "search_score_threshold": 0.95})
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def test_with_the_refuse_policy_nothing_above_the_threshold_means_no_answer_and_no_model_call(
    refusing_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    client = refusing_client
    user = await register(client)
    await ingest(client, user, {"sharps.txt": SOURCES["sharps.txt"]})

    response = await client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert message["status"] == "complete"
    assert message["sources"] == []
    assert message["grounded"] is False
    assert message["content"].startswith("The knowledge base has nothing on this question")
    assert streamed_requests(fake_llm) == [], "the model was not asked"


@pytest.mark.parametrize("citation", ["[1, 2]", "[1-2]", "[1; 2]", "[1–2]"])
async def test_an_answer_citing_a_group_or_a_range_of_passages_is_stored_as_grounded(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer, citation: str
) -> None:
    """``grounded`` reads citations as the citation check does: ``[1, 2]`` and ``[1-2]`` cite passages."""
    remote_client.app.state.runtime.retriever = FakeRetriever()  # two passages
    fake_llm.reply = f"Avoid large amounts of cranberry juice {citation}."
    user = await register(remote_client)

    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 201, response.text
    turn = response.json()
    stored = await remote_client.get(f"{API}/conversations/{turn['conversation_id']}", headers=user.headers)
    answer = stored.json()["messages"][-1]
    assert answer["content"] == f"Avoid large amounts of cranberry juice {citation}."
    assert answer["grounded"] is True

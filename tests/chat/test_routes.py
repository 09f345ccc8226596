"""The chat JSON API (API.md) in the default sources-only mode: conversations, messages, branches, exports."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.llm.local import find_local_model
from medchat.retrieval import Passage, SearchScope
from tests.support.accounts import PASSWORD, ChatUser, register
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.fake_retriever import FakeRetriever
from tests.support.serve import ServeProcess
from tests.support.sse import parse_sse

API = "/api/v1/chat"
SOURCES_ONLY_LABEL = "Sources only — no language model configured"


async def ask(client: AsyncTestClient[Litestar], user: ChatUser, content: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/messages", json={"content": content, **extra}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_every_route_needs_a_user(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get(f"{API}/conversations")).status_code == 401
    response = await client.post(f"{API}/messages", json={"content": "hi"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_ask_answers_in_sources_only_mode_and_the_conversation_is_kept(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    turn = await ask(client, alice, "What is a normal blood pressure?")
    user_message, message = turn["user_message"], turn["message"]
    assert user_message["role"] == "user"
    assert user_message["content"] == "What is a normal blood pressure?"
    assert message["role"] == "assistant"
    assert message["status"] == "complete"
    assert message["parent_id"] == user_message["id"]
    assert message["model"] == "sources-only"
    assert message["model_label"] == SOURCES_ONLY_LABEL
    assert message["grounded"] is False
    assert message["sources"] == []
    assert message["safety"] == {"emergency": False, "categories": [], "notice": None, "scope_refusal": None}
    assert "Not covered" in message["content"]
    assert message["timing"]["total_ms"] >= 0
    assert set(message) >= {"id", "conversation_id", "parent_id", "role", "content", "status", "sources",
                            "grounded", "safety", "model", "usage", "created_at"}  # fmt: skip

    detail = (await client.get(f"{API}/conversations/{turn['conversation_id']}", headers=alice.headers)).json()
    assert detail["title"] == "What is a normal blood pressure?"
    assert [m["id"] for m in detail["messages"]] == [user_message["id"], message["id"]]
    assert detail["active_leaf_id"] == message["id"]

    follow_up = await ask(client, alice, "And for children?", conversation_id=turn["conversation_id"])
    assert follow_up["user_message"]["parent_id"] == message["id"]
    detail = (await client.get(f"{API}/conversations/{turn['conversation_id']}", headers=alice.headers)).json()
    assert len(detail["messages"]) == 4


async def test_retrieval_plugs_in_without_changing_the_pipeline(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    retriever = FakeRetriever()
    client.app.state.runtime.retriever = retriever
    turn = await ask(client, alice, "What blood pressure counts as hypertension?")
    message = turn["message"]
    assert retriever.scopes == [SearchScope(user_id=alice.id, is_admin=False)]
    assert [s["document_id"] for s in message["sources"]] == ["doc-1", "doc-2"]
    assert message["sources"][0] | {"snippet": ""} == {
        "number": 1, "document_id": "doc-1", "chunk_id": "doc-1:0", "title": "Hypertension guideline", "page": 3,
        "section": "Definition", "snippet": "", "score": 0.82,
        "text": "Hypertension is a blood pressure persistently at or above 140/90 mmHg. It raises stroke risk.",
    }  # fmt: skip
    assert message["grounded"] is True
    assert "140/90" in message["content"]
    assert "[1]" in message["content"]

    graph = (await client.get(f"{API}/conversations/{turn['conversation_id']}/graph", headers=alice.headers)).json()
    types = [node["type"] for node in graph["nodes"]]
    assert types == ["user", "retrieval", "generation"]
    user_node, retrieval_node, generation_node = graph["nodes"]
    assert user_node["id"] == turn["user_message"]["id"]
    assert retrieval_node["query"] == "What blood pressure counts as hypertension?"
    assert [p["chunk_id"] for p in retrieval_node["passages"]] == ["doc-1:0", "doc-2:4"]
    assert generation_node["model"] == "sources-only"
    assert generation_node["message_id"] == message["id"]
    assert {(e["from"], e["to"], e["relation"]) for e in graph["edges"]} == {
        (user_node["id"], retrieval_node["id"], "retrieved"),
        (retrieval_node["id"], generation_node["id"], "grounded"),
        (user_node["id"], generation_node["id"], "answered_by"),
    }


async def test_a_broken_retriever_degrades_to_an_ungrounded_answer(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    class Broken:
        async def search(self, query: str, *, scope: SearchScope, top_k: int | None = None) -> list[Passage]:
            raise RuntimeError("index unavailable")

    client.app.state.runtime.retriever = Broken()
    message = (await ask(client, alice, "Anything?"))["message"]
    assert message["status"] == "complete"
    assert message["grounded"] is False


async def test_sse_events_come_in_order_and_end_with_done(client: AsyncTestClient[Litestar], alice: ChatUser) -> None:
    client.app.state.runtime.retriever = FakeRetriever()
    response = await client.post(
        f"{API}/messages",
        json={"content": "What is hypertension?"},
        headers={**alice.headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "meta"
    assert names[1] == "sources"
    assert names[-1] == "done"
    assert set(names[2:-1]) == {"token"}
    meta, sources, done = events[0][1], events[1][1], events[-1][1]
    assert meta["message"]["status"] == "streaming"
    assert meta["user_message"]["content"] == "What is hypertension?"
    assert [s["number"] for s in sources["sources"]] == [1, 2]
    streamed = "".join(data["text"] for name, data in events if name == "token")
    assert done["message"]["id"] == meta["message"]["id"]
    assert done["message"]["status"] == "complete"
    assert streamed.strip() == done["message"]["content"]

    stored = (await client.get(f"{API}/conversations/{meta['conversation_id']}", headers=alice.headers)).json()
    assert stored["messages"][-1]["content"] == done["message"]["content"]


async def test_list_search_pagination_rename_delete(
    client: AsyncTestClient[Litestar], alice: ChatUser, bob: ChatUser
) -> None:
    created = []
    for title in ("Asthma plan", "Gout diet", "asthma in winter"):
        response = await client.post(f"{API}/conversations", json={"title": title}, headers=alice.headers)
        assert response.status_code == 201
        created.append(response.json())
    await client.post(f"{API}/conversations", json={"title": "Bob's asthma"}, headers=bob.headers)

    listing = (await client.get(f"{API}/conversations", headers=alice.headers)).json()
    assert [item["title"] for item in listing["items"]] == ["asthma in winter", "Gout diet", "Asthma plan"]
    assert listing["next_cursor"] is None

    found = (await client.get(f"{API}/conversations", params={"q": "ASTHMA"}, headers=alice.headers)).json()
    assert [item["title"] for item in found["items"]] == ["asthma in winter", "Asthma plan"]

    first = (await client.get(f"{API}/conversations", params={"limit": 2}, headers=alice.headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (
        await client.get(
            f"{API}/conversations", params={"limit": 2, "cursor": first["next_cursor"]}, headers=alice.headers
        )
    ).json()
    assert [item["title"] for item in rest["items"]] == ["Asthma plan"]
    assert rest["next_cursor"] is None
    bad = await client.get(f"{API}/conversations", params={"cursor": "garbage"}, headers=alice.headers)
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"

    target = created[0]["id"]
    renamed = await client.patch(
        f"{API}/conversations/{target}", json={"title": "Asthma action plan"}, headers=alice.headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Asthma action plan"
    listing = (await client.get(f"{API}/conversations", headers=alice.headers)).json()
    assert listing["items"][0]["id"] == target, "renaming counts as activity"

    assert (await client.delete(f"{API}/conversations/{target}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"{API}/conversations/{target}", headers=alice.headers)).status_code == 404


async def test_another_users_conversation_is_404_everywhere(
    client: AsyncTestClient[Litestar], alice: ChatUser, bob: ChatUser
) -> None:
    turn = await ask(client, alice, "My private question")
    conversation_id = turn["conversation_id"]
    question_id, answer_id = turn["user_message"]["id"], turn["message"]["id"]
    attempts = [
        ("GET", f"{API}/conversations/{conversation_id}", None),
        ("PATCH", f"{API}/conversations/{conversation_id}", {"title": "mine now"}),
        ("DELETE", f"{API}/conversations/{conversation_id}", None),
        ("GET", f"{API}/conversations/{conversation_id}/graph", None),
        ("GET", f"{API}/conversations/{conversation_id}/export?format=md", None),
        ("GET", f"{API}/conversations/{conversation_id}/export?format=json", None),
        ("POST", f"{API}/conversations/{conversation_id}/switch", {"message_id": question_id}),
        ("POST", f"{API}/messages", {"content": "hijack", "conversation_id": conversation_id}),
        ("POST", f"{API}/messages", {"conversation_id": conversation_id, "parent_id": question_id}),
        ("POST", f"{API}/messages/{answer_id}/stop", None),
        ("GET", f"{API}/messages/{answer_id}/events", None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "My private question" not in response.text
        assert response.json()["code"] == "not_found"
    listing = (await client.get(f"{API}/conversations", headers=bob.headers)).json()
    assert listing["items"] == []
    still = (await client.get(f"{API}/conversations/{conversation_id}", headers=alice.headers)).json()
    assert len(still["messages"]) == 2


async def test_editing_a_question_makes_a_branch_and_switching_restores_the_other(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    first = await ask(client, alice, "What is asthma?")
    conversation_id = first["conversation_id"]
    second = await ask(client, alice, "How is it treated?", conversation_id=conversation_id)

    edited = await ask(
        client, alice, "What is COPD?", conversation_id=conversation_id, edit_of=first["user_message"]["id"]
    )
    assert edited["user_message"]["parent_id"] is None
    detail = (await client.get(f"{API}/conversations/{conversation_id}", headers=alice.headers)).json()
    assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == ["What is COPD?"]
    assert detail["messages"][0]["siblings"] == [first["user_message"]["id"], edited["user_message"]["id"]]

    switched = await client.post(
        f"{API}/conversations/{conversation_id}/switch",
        json={"message_id": first["user_message"]["id"]},
        headers=alice.headers,
    )
    assert switched.status_code == 200
    thread = switched.json()["messages"]
    assert [m["id"] for m in thread] == [
        first["user_message"]["id"], first["message"]["id"], second["user_message"]["id"], second["message"]["id"],
    ]  # fmt: skip
    again = (await client.get(f"{API}/conversations/{conversation_id}", headers=alice.headers)).json()
    assert again["active_leaf_id"] == second["message"]["id"], "the choice is kept"

    # Asking now continues the branch on screen.
    third = await ask(client, alice, "Any side effects?", conversation_id=conversation_id)
    assert third["user_message"]["parent_id"] == second["message"]["id"]


async def test_regenerating_makes_sibling_answers(client: AsyncTestClient[Litestar], alice: ChatUser) -> None:
    turn = await ask(client, alice, "What is gout?")
    again = await ask(client, alice, "", conversation_id=turn["conversation_id"], parent_id=turn["user_message"]["id"])
    assert again["user_message"]["id"] == turn["user_message"]["id"]
    assert again["message"]["parent_id"] == turn["user_message"]["id"]
    assert again["message"]["siblings"] == [turn["message"]["id"], again["message"]["id"]]
    detail = (await client.get(f"{API}/conversations/{turn['conversation_id']}", headers=alice.headers)).json()
    assert [m["id"] for m in detail["messages"]] == [turn["user_message"]["id"], again["message"]["id"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 400),
        ({"content": "   "}, 400),
        ({"content": "x" * 9000}, 400),
        ({"content": "hi", "parent_id": "6b0000000000000000000000"}, 400),
        ({"content": "hi", "unknown": 1}, 400),
        ({"content": "hi", "conversation_id": "not-an-id"}, 404),
    ],
)
async def test_invalid_messages_are_rejected_before_anything_is_stored(
    client: AsyncTestClient[Litestar], alice: ChatUser, body: dict[str, Any], status: int
) -> None:
    response = await client.post(f"{API}/messages", json=body, headers=alice.headers)
    assert response.status_code == status, response.text
    listing = (await client.get(f"{API}/conversations", headers=alice.headers)).json()
    assert listing["items"] == []


async def test_a_question_cannot_take_content_when_regenerating(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    turn = await ask(client, alice, "What is gout?")
    response = await client.post(
        f"{API}/messages",
        json={"content": "new", "conversation_id": turn["conversation_id"], "parent_id": turn["user_message"]["id"]},
        headers=alice.headers,
    )
    assert response.status_code == 400


async def test_export_markdown_and_json(client: AsyncTestClient[Litestar], alice: ChatUser) -> None:
    client.app.state.runtime.retriever = FakeRetriever()
    turn = await ask(client, alice, "What is hypertension?")
    conversation_id = turn["conversation_id"]

    markdown = await client.get(
        f"{API}/conversations/{conversation_id}/export", params={"format": "md"}, headers=alice.headers
    )
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "attachment" in markdown.headers["content-disposition"]
    assert markdown.headers["content-disposition"].endswith('.md"')
    text = markdown.text
    assert text.startswith("# What is hypertension?")
    assert "## You" in text and "What is hypertension?" in text
    assert "**Sources**" in text and "1. Hypertension guideline, page 3" in text

    exported = await client.get(
        f"{API}/conversations/{conversation_id}/export", params={"format": "json"}, headers=alice.headers
    )
    assert exported.headers["content-disposition"].endswith('.json"')
    document = json.loads(exported.text)
    assert document["format"] == "medchat.conversation.v1"
    assert document["conversation"]["id"] == conversation_id
    assert [m["role"] for m in document["messages"]] == ["user", "assistant"]
    assert document["messages"][1]["sources"][0]["title"] == "Hypertension guideline"
    assert document["thread"] == [turn["user_message"]["id"], turn["message"]["id"]]
    assert {node["type"] for node in document["graph"]["nodes"]} == {"user", "retrieval", "generation"}

    bad = await client.get(
        f"{API}/conversations/{conversation_id}/export", params={"format": "pdf"}, headers=alice.headers
    )
    assert bad.status_code == 400


async def test_finished_answers_replay_their_outcome_as_events(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    turn = await ask(client, alice, "What is gout?")
    response = await client.get(f"{API}/messages/{turn['message']['id']}/events", headers=alice.headers)
    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["sources", "done"]
    assert events[-1][1]["message"]["content"] == turn["message"]["content"]


async def test_a_second_user_gets_their_own_list(client: AsyncTestClient[Litestar]) -> None:
    carol = await register(client, name="carol")
    dave = await register(client, name="dave")
    await ask(client, carol, "Carol's question")
    assert (await client.get(f"{API}/conversations", headers=dave.headers)).json()["items"] == []


# --- against a real `medchat serve`: client disconnects and stops ------------------------------------


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=" ".join(f"word{n}" for n in range(80)), token_delay=0.02) as server:
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, slow_llm: FakeLLMServer) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": slow_llm.base_url,
        "MEDCHAT_LLM_MODEL": "fake/slow",
    }
    with ServeProcess(tmp_path_factory.mktemp("chat-live") / "data", extra_env=env) as server:
        yield server


async def live_user(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"live-{uuid.uuid4().hex[:8]}@example.org"
    response = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def read_until_tokens(lines: AsyncIterator[str], count: int) -> dict[str, Any]:
    """Read SSE lines until ``count`` token events arrived; returns the ``meta`` event's data."""
    meta: dict[str, Any] = {}
    tokens = 0
    event = ""
    async for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "meta":
            meta = json.loads(line[5:])
        elif line.startswith("data:") and event == "token":
            tokens += 1
            if tokens >= count:
                return meta
    raise AssertionError("the stream ended early")


async def once_answered(http: httpx.AsyncClient, headers: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    """The conversation once its answer is written: the answer's events followed to their end (``done`` or
    ``error`` comes after the answer is stored)."""
    async with http.stream("GET", f"{API}/messages/{meta['message']['id']}/events", headers=headers) as events:
        names = [line async for line in events.aiter_lines() if line.startswith("event:")]
    assert names[-1] in ("event: done", "event: error"), names
    return (await http.get(f"{API}/conversations/{meta['conversation_id']}", headers=headers)).json()


@pytest.mark.slow
async def test_a_client_that_disconnects_mid_answer_still_gets_a_stored_complete_answer(live: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        headers = await live_user(http)
        stream_headers = {**headers, "Accept": "text/event-stream"}
        async with http.stream(
            "POST", f"{API}/messages", json={"content": "Tell me"}, headers=stream_headers
        ) as response:
            assert response.status_code == 200
            meta = await read_until_tokens(response.aiter_lines(), 3)
        # The connection is closed here, mid-answer; the server finishes and stores the answer anyway.
        detail = await once_answered(http, headers, meta)
        answer = detail["messages"][-1]
        assert answer["status"] == "complete"
        assert answer["content"].startswith("word0 word1 word2") and answer["content"].endswith("word79")


@pytest.mark.slow
async def test_stopping_an_answer_keeps_what_was_written(live: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        headers = await live_user(http)
        stream_headers = {**headers, "Accept": "text/event-stream"}
        async with http.stream(
            "POST", f"{API}/messages", json={"content": "Tell me"}, headers=stream_headers
        ) as response:
            lines = response.aiter_lines()
            meta = await read_until_tokens(lines, 3)
            stopped = await http.post(f"{API}/messages/{meta['message']['id']}/stop", headers=headers)
            rest = [line async for line in lines]
        assert stopped.status_code == 200
        message = stopped.json()
        assert message["status"] == "failed"
        assert message["error"]["code"] == "stopped"
        assert message["content"].startswith("word0 word1 word2")
        assert "event: error" in rest
        detail = await once_answered(http, headers, meta)
        assert detail["messages"][-1]["status"] == "failed"


@pytest.mark.slow
async def test_a_fresh_serve_without_an_api_key_answers(tmp_path: Path) -> None:
    """Sources-only by default; with the local model installed (``medchat model install-local``), that model."""
    expected = "sources-only" if find_local_model() is None else "SmolLM2-135M-Instruct"
    # A short answer keeps the local model quick; the point is that a model answers, not how much.
    with ServeProcess(tmp_path / "data", extra_env={"MEDCHAT_LLM_MAX_OUTPUT_TOKENS": "24"}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
            ready = (await http.get("/readyz")).json()
            assert ready["checks"]["llm"] == "ok"
            headers = await live_user(http)
            response = await http.post(f"{API}/messages", json={"content": "What is asthma?"}, headers=headers)
            assert response.status_code == 201, response.text
            message = response.json()["message"]
            assert message["status"] == "complete"
            assert message["model"] == expected
            assert message["content"]

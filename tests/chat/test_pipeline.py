"""The answer pipeline against a real OpenAI-compatible HTTP server (``tests.support.fake_llm``).

Every failure of the model (500, 429, timeout, connection refused, a stream cut half-way) must give
the user a clear message and a way to retry, keep their question, leave the answer ``failed`` (never
``streaming``), and never reach the client as a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.chat.answering.titles import heuristic_title
from medchat.settings import Settings
from tests.support.accounts import ChatUser, register
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer, closed_port_url
from tests.support.sse import parse_sse

API = "/api/v1/chat"
QUESTION = "What blood pressure is too high?"


async def conversation(client: AsyncTestClient[Litestar], user: ChatUser, conversation_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/conversations/{conversation_id}", headers=user.headers)
    assert response.status_code == 200
    return response.json()


async def test_streams_the_models_tokens_and_stores_the_answer(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    response = await remote_client.post(
        f"{API}/messages", json={"content": QUESTION}, headers={**user.headers, "Accept": "text/event-stream"}
    )
    assert response.status_code == 200
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[:2] == ["meta", "sources"] and names[-1] == "done"
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3, "the answer arrives in pieces"
    assert "".join(tokens) == "Blood pressure above 140/90 mmHg is raised [1]."
    done = events[-1][1]["message"]
    # No passages were retrieved, so the dangling [1] is removed before the answer is stored.
    assert done["content"] == "Blood pressure above 140/90 mmHg is raised."
    assert done["model"] == "fake/test-model"
    assert done["usage"]["completion_tokens"] > 0
    assert done["timing"]["first_token_ms"] is not None
    assert done["grounded"] is False

    sent = next(r.body for r in fake_llm.chat_requests if r.body and r.body.get("stream"))
    assert sent["messages"][-1] == {"role": "user", "content": QUESTION}

    stored = await conversation(remote_client, user, events[0][1]["conversation_id"])
    assert stored["messages"][-1]["status"] == "complete"
    assert stored["messages"][-1]["content"] == done["content"]


async def test_follow_up_questions_carry_the_thread_as_history(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    first = (await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)).json()
    await remote_client.post(
        f"{API}/messages",
        json={"content": "And for children?", "conversation_id": first["conversation_id"]},
        headers=user.headers,
    )
    answers = [r.body for r in fake_llm.chat_requests if r.body and r.body.get("stream")]
    roles = [(m["role"], m["content"]) for m in answers[-1]["messages"][1:]]
    assert roles == [
        ("user", QUESTION),
        ("assistant", first["message"]["content"]),
        ("user", "And for children?"),
    ]


async def test_the_title_comes_from_the_model(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = lambda body: "Raised blood pressure" if not body.get("stream") else "It is raised [1]."
    user = await register(remote_client)
    turn = (await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)).json()
    await in_app_loop(remote_client, engine_of(remote_client).wait_background())  # the title is written after
    assert (await conversation(remote_client, user, turn["conversation_id"]))["title"] == "Raised blood pressure"


async def test_without_model_titles_the_first_words_stay_and_the_model_answers_only(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = lambda body: "Raised blood pressure" if not body.get("stream") else "It is raised [1]."
    settings = remote_settings.model_copy(update={"chat_model_titles": False})
    async with AsyncTestClient(app=create_app(settings)) as client:
        user = await register(client)
        turn = (await client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)).json()
        await in_app_loop(client, engine_of(client).wait_background())
        stored = await conversation(client, user, turn["conversation_id"])
    assert stored["title"] == heuristic_title(QUESTION)
    assert [bool((request.body or {}).get("stream")) for request in fake_llm.chat_requests] == [True]


FAILURES = [
    pytest.param("status_500", "upstream_error", id="http-500"),
    pytest.param("status_429", "rate_limited", id="http-429"),
    pytest.param("hang", "timeout", id="timeout"),
    pytest.param("cut_stream", "interrupted", id="stream-cut-half-way"),
]


@pytest.mark.parametrize(("mode", "reason"), FAILURES)
async def test_a_failing_model_gives_a_clear_error_keeps_the_question_and_can_be_retried(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer, mode: str, reason: str
) -> None:
    user = await register(remote_client)
    fake_llm.fail_with(mode)  # type: ignore[arg-type]
    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "llm_unavailable"
    assert problem["reason"] == reason
    assert problem["detail"] and "Traceback" not in problem["detail"]
    conversation_id, question_id = problem["conversation_id"], problem["user_message_id"]
    assert problem["retry"] == {"conversation_id": conversation_id, "parent_id": question_id}

    stored = await conversation(remote_client, user, conversation_id)
    question, answer = stored["messages"]
    assert question["id"] == question_id and question["content"] == QUESTION, "the question is never lost"
    assert answer["status"] == "failed"
    assert answer["error"]["detail"] == problem["detail"]
    if mode == "cut_stream":
        assert answer["content"], "what was streamed before the cut is kept"

    fake_llm.fail_with(None)
    retry = await remote_client.post(
        f"{API}/messages", json={"conversation_id": conversation_id, "parent_id": question_id}, headers=user.headers
    )
    assert retry.status_code == 201, retry.text
    assert retry.json()["message"]["status"] == "complete"
    stored = await conversation(remote_client, user, conversation_id)
    assert [m["status"] for m in stored["messages"]] == ["complete", "complete"]
    assert stored["messages"][1]["siblings"] == [answer["id"], retry.json()["message"]["id"]]


@pytest.mark.parametrize(("mode", "reason"), FAILURES)
async def test_a_failing_model_ends_the_event_stream_with_an_error_event(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer, mode: str, reason: str
) -> None:
    user = await register(remote_client)
    fake_llm.fail_with(mode)  # type: ignore[arg-type]
    response = await remote_client.post(
        f"{API}/messages", json={"content": QUESTION}, headers={**user.headers, "Accept": "text/event-stream"}
    )
    assert response.status_code == 200
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-1] == "error"
    assert "done" not in names
    if mode == "cut_stream":
        assert names.count("token") == fake_llm.cut_after_tokens
    problem = events[-1][1]
    assert problem["code"] == "llm_unavailable" and problem["reason"] == reason
    assert problem["user_message_id"] == events[0][1]["user_message"]["id"]
    stored = await conversation(remote_client, user, events[0][1]["conversation_id"])
    assert [m["status"] for m in stored["messages"]] == ["complete", "failed"]


async def test_a_failed_answer_is_one_problem_for_the_json_route_the_stream_and_the_replay(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    user = await register(remote_client)
    fake_llm.fail_with("status_429")
    response = await remote_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)

    assert response.status_code == 503
    problem = response.json()
    assert list(problem) == [
        "type", "title", "status", "detail", "code", "reason",
        "conversation_id", "user_message_id", "message_id", "retry", "retry_after",
    ]  # fmt: skip
    assert problem["type"] == "https://medchat.dev/problems/llm_unavailable" and problem["status"] == 503
    assert problem["retry_after"] == fake_llm.retry_after_seconds
    assert response.headers["Retry-After"] == str(problem["retry_after"])
    replayed = await remote_client.get(f"{API}/messages/{problem['message_id']}/events", headers=user.headers)
    assert parse_sse(replayed.text)[-1] == ("error", problem), "the stored failure reads the same"


@pytest.fixture
async def unreachable_client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    unreachable = settings.model_copy(
        update={"llm_api_key": "test-key", "llm_base_url": closed_port_url(), "llm_max_retries": 1}
    )
    async with AsyncTestClient(app=create_app(unreachable)) as test_client:
        yield test_client


async def test_connection_refused_is_a_clear_503_and_the_question_is_kept(
    unreachable_client: AsyncTestClient[Litestar],
) -> None:
    user = await register(unreachable_client)
    response = await unreachable_client.post(f"{API}/messages", json={"content": QUESTION}, headers=user.headers)
    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "llm_unavailable" and problem["reason"] == "connection"
    stored = await conversation(unreachable_client, user, problem["conversation_id"])
    assert [m["status"] for m in stored["messages"]] == ["complete", "failed"]
    assert stored["messages"][0]["content"] == QUESTION

    streamed = await unreachable_client.post(
        f"{API}/messages",
        json={"conversation_id": problem["conversation_id"], "parent_id": problem["user_message_id"]},
        headers={**user.headers, "Accept": "text/event-stream"},
    )
    assert [name for name, _ in parse_sse(streamed.text)][-1] == "error"

    ready = await unreachable_client.get("/readyz")  # the model's outage is reported, never a reason to be unready
    assert ready.status_code == 200 and ready.json()["checks"]["llm"] != "ok"


@pytest.mark.local_model
@pytest.mark.slow
async def test_the_installed_local_model_answers_without_an_api_key(settings: Settings) -> None:
    short = settings.model_copy(update={"llm_max_output_tokens": 24})
    async with AsyncTestClient(app=create_app(short)) as client:
        engine = engine_of(client)
        if engine.provider.kind != "local":
            pytest.skip("the local model is not installed (medchat model install-local)")
        user = await register(client)
        response = await client.post(f"{API}/messages", json={"content": "What is asthma?"}, headers=user.headers)
        assert response.status_code == 201, response.text
        message = response.json()["message"]
        assert message["status"] == "complete"
        assert message["model"] == "SmolLM2-135M-Instruct"
        assert message["content"]


async def test_an_emergency_question_is_flagged_before_the_answer(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "Chest pain has many causes [1]. It can come from the heart, lungs or muscles."
    settings = remote_settings.model_copy(update={"emergency_number": "999"})
    async with AsyncTestClient(app=create_app(settings)) as client:
        user = await register(client)
        response = await client.post(
            f"{API}/messages",
            json={"content": "I have crushing chest pain right now and my left arm is numb"},
            headers={**user.headers, "Accept": "text/event-stream"},
        )
        events = parse_sse(response.text)
        names = [name for name, _ in events]
        assert names.count("token") > 3, "the model's answer streams in pieces"
        # The notice arrives with the first event, before the first token of the model's answer.
        assert names.index("meta") == 0 < names.index("token")
        meta = events[0][1]
        for message in (meta["user_message"], meta["message"], events[-1][1]["message"]):
            assert message["safety"]["emergency"] is True
            assert message["safety"]["categories"] == ["cardiac"]
            assert message["safety"]["notice"].startswith("This may be an emergency. Call 999 now")
        calm = await client.post(f"{API}/messages", json={"content": "What is hypertension?"}, headers=user.headers)
        safety = calm.json()["message"]["safety"]
        assert safety == {"emergency": False, "categories": [], "notice": None, "scope_refusal": None}


async def test_identifiers_never_reach_the_model_but_come_back_in_the_answer(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "We will write to [EMAIL_1] about it."
    settings = remote_settings.model_copy(update={"redact_phi_for_llm": True})
    async with AsyncTestClient(app=create_app(settings)) as client:
        user = await register(client)
        response = await client.post(
            f"{API}/messages",
            json={"content": "Please email my results to jo.bloggs@example.org"},
            headers=user.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["message"]["content"] == "We will write to jo.bloggs@example.org about it."
        assert response.json()["user_message"]["content"] == "Please email my results to jo.bloggs@example.org"
    streamed = [r for r in fake_llm.chat_requests if r.body and r.body.get("stream")]
    assert b"jo.bloggs@example.org" not in streamed[0].raw
    assert "[EMAIL_1]" in streamed[0].body["messages"][-1]["content"]

"""Per-user limits: questions per hour and answer tokens per day, by role, enforced in Redis before
anything is stored; clear 429s; the remaining budget in headers, ``GET /limits`` and the chat page.

No test waits for a window to pass: they check ``Retry-After`` and ``resets_at`` instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.settings import Settings
from tests.support.accounts import ChatUser, RegisterUser, register, sign_in_browser
from tests.support.fake_llm import FakeLLMServer
from tests.support.sse import parse_sse

API = "/api/v1/chat"


def next_hour() -> datetime:
    return datetime.fromtimestamp((time.time() // 3600 + 1) * 3600, UTC)


def next_midnight() -> datetime:
    return datetime.fromtimestamp((time.time() // 86400 + 1) * 86400, UTC)


def iso(moment: datetime) -> str:
    """A UTC time as the JSON API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def limited(remote_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Two questions an hour and 1,000 answer tokens a day for users; admins keep the default (unlimited)."""
    settings = remote_settings.model_copy(update={"messages_per_hour_user": 2, "tokens_per_day_user": 1000})
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def conversations_of(client: AsyncTestClient[Litestar], user: ChatUser) -> list[dict]:
    return (await client.get(f"{API}/conversations", headers=user.headers)).json()["items"]


async def test_the_hours_questions_run_out_with_a_clear_429_and_nothing_is_stored(
    limited: AsyncTestClient[Litestar],
) -> None:
    client = limited
    user = await register(client)
    first = await client.post(f"{API}/messages", json={"content": "What is asthma?"}, headers=user.headers)
    assert first.status_code == 201
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Resource"] == "messages"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert int(first.headers["X-RateLimit-Reset"]) == int(next_hour().timestamp())
    streamed = await client.post(
        f"{API}/messages",
        json={"content": "And COPD?", "conversation_id": first.json()["conversation_id"]},
        headers={**user.headers, "Accept": "text/event-stream"},
    )
    assert streamed.headers["X-RateLimit-Remaining"] == "0", "the streamed answer carries them too"
    assert parse_sse(streamed.text)[-1][0] == "done"

    refused = await client.post(f"{API}/messages", json={"content": "What is gout?"}, headers=user.headers)

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "rate_limited"
    assert problem["budget"] == "messages" and problem["limit"] == 2
    assert problem["resets_at"] == iso(next_hour())
    assert (refused.headers["X-RateLimit-Remaining"], refused.headers["X-RateLimit-Resource"]) == ("0", "messages")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert abs(retry_after - (next_hour().timestamp() - time.time())) < 5
    assert "2 questions this hour" in problem["detail"] and f"{next_hour():%H:%M} UTC" in problem["detail"]
    conversations = await conversations_of(client, user)
    assert len(conversations) == 1, "the refused question started no conversation"
    detail = (await client.get(f"{API}/conversations/{conversations[0]['id']}", headers=user.headers)).json()
    assert len(detail["messages"]) == 4, "two questions and their answers, nothing of the refused one"

    limits = (await client.get(f"{API}/limits", headers=user.headers)).json()
    assert limits["messages"] == {"limit": 2, "remaining": 0, "used": 2, "resets_at": iso(next_hour())}

    other = await register(client, name="other")
    allowed = await client.post(f"{API}/messages", json={"content": "What is gout?"}, headers=other.headers)
    assert allowed.status_code == 201, "another user has a budget of their own"


async def test_answer_tokens_are_counted_when_the_answer_completes_and_close_the_day(
    limited: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    client = limited
    user = await register(client)
    fake_llm.reply = " ".join(["word"] * 1200)  # 1,200 completion tokens: past the day's 1,000
    before = (await client.get(f"{API}/limits", headers=user.headers)).json()["tokens"]
    assert before == {"limit": 1000, "remaining": 1000, "used": 0, "resets_at": iso(next_midnight())}

    answered = (await client.post(f"{API}/messages", json={"content": "Tell me a lot"}, headers=user.headers)).json()
    usage = answered["message"]["usage"]
    spent = usage["prompt_tokens"] + usage["completion_tokens"]
    tokens = (await client.get(f"{API}/limits", headers=user.headers)).json()["tokens"]
    assert (tokens["used"], tokens["remaining"]) == (spent, 0)

    refused = await client.post(f"{API}/messages", json={"content": "And more?"}, headers=user.headers)
    assert refused.status_code == 429
    problem = refused.json()
    assert problem["budget"] == "tokens" and problem["resets_at"] == iso(next_midnight())
    assert refused.headers["X-RateLimit-Resource"] == "tokens"
    assert refused.headers["X-RateLimit-Reset"] == str(int(next_midnight().timestamp()))
    assert "today's budget of 1,000 tokens" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400


async def test_limits_are_per_role(limited: AsyncTestClient[Litestar], register_admin: RegisterUser) -> None:
    admin = await register_admin(limited)
    for number in range(3):
        response = await limited.post(f"{API}/messages", json={"content": f"Question {number}"}, headers=admin.headers)
        assert response.status_code == 201
        assert "X-RateLimit-Limit" not in response.headers, "unlimited: no budget headers"
    limits = (await limited.get(f"{API}/limits", headers=admin.headers)).json()
    assert limits["messages"]["limit"] is None and limits["messages"]["remaining"] is None
    assert limits["messages"]["used"] == 3
    assert limits["tokens"]["limit"] is None


async def test_the_chat_page_shows_the_budget_refreshes_it_and_says_when_it_is_used_up(
    limited: AsyncTestClient[Litestar],
) -> None:
    client = limited
    user = await register(client)
    csrf = await sign_in_browser(client, user)
    page = await client.get("/chat", headers=csrf)
    budget = page.text.split('id="chat-budget"', 1)[1].split("</section>", 1)[0]
    assert '<dd data-budget="messages">2 of 2 left</dd>' in budget
    assert '<dd data-budget="tokens">1,000 of 1,000 left</dd>' in budget

    htmx = {**csrf, "HX-Request": "true"}
    turn = await client.post("/chat/messages", data={"content": "What is asthma?", "conversation_id": ""}, headers=htmx)
    assert turn.status_code == 200
    assert 'id="chat-budget" class="budget" aria-label="Your limits" hx-swap-oob="true"' in turn.text
    assert '<dd data-budget="messages">1 of 2 left</dd>' in turn.text, "refreshed as the question is sent"
    message_id = turn.text.split('sse-connect="/chat/messages/', 1)[1].split("/stream", 1)[0]
    stream = await client.get(f"/chat/messages/{message_id}/stream", headers=csrf)
    done = next(data for name, data in parse_sse(stream.text) if name == "done")
    assert 'hx-swap-oob="true"' in done and 'data-budget="tokens">' in done, "and again after the answer"
    assert "1,000 of 1,000 left" not in done, "the answer's tokens are counted"

    await client.post("/chat/messages", data={"content": "And COPD?"}, headers=htmx)
    refused = await client.post("/chat/messages", data={"content": "And gout?"}, headers=htmx)
    assert refused.status_code == 429
    assert refused.headers["HX-Retarget"] == "#flash"
    assert "2 questions this hour" in refused.text
    page = await client.get("/chat", headers=csrf)
    assert "You have sent all 2 questions allowed this hour." in page.text
    assert f"You can ask again at {next_hour():%H:%M} UTC." in page.text

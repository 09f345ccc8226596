"""Where the chat API and its OpenAPI schema must agree with what clients are promised (API.md): errors
before a stream starts, bodies that say what the schema says, times with their timezone, and hostile bodies
refused as client errors."""

from __future__ import annotations

import re
from datetime import datetime

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import PASSWORD, ChatUser

API = "/api/v1/chat"
PROBLEM = "application/problem+json"


async def ask(client: AsyncTestClient[Litestar], user: ChatUser, content: str = "What is hand hygiene?") -> dict:
    response = await client.post(f"{API}/messages", json={"content": content}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


def has_timezone(value: str) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


async def test_following_a_questions_events_is_404_before_any_stream(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    turn = await ask(client, alice)
    response = await client.get(f"{API}/messages/{turn['user_message']['id']}/events", headers=alice.headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "not_found"


async def test_deeply_nested_json_is_a_client_error(client: AsyncTestClient[Litestar], alice: ChatUser) -> None:
    depth = 100_000
    body = '{"content": ' + "[" * depth + "]" * depth + "}"
    response = await client.post(
        f"{API}/messages", content=body, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] in ("bad_request", "validation_failed")


async def test_every_time_the_api_returns_carries_a_timezone(
    client: AsyncTestClient[Litestar], alice: ChatUser
) -> None:
    turn = await ask(client, alice)
    conversation_id = turn["conversation_id"]
    bodies = [
        turn,
        (await client.get("/api/v1/users/me", headers=alice.headers)).json(),
        (await client.get(f"{API}/conversations", headers=alice.headers)).json(),
        (await client.get(f"{API}/conversations/{conversation_id}", headers=alice.headers)).json(),
        (await client.get(f"{API}/conversations/{conversation_id}/export", headers=alice.headers)).json(),
    ]
    login = await client.post("/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD})
    bodies.append(login.json())
    renamed = await client.patch("/api/v1/users/me", json={"full_name": "Alice A."}, headers=alice.headers)
    bodies += [renamed.json(), (await client.get("/api/v1/users/me", headers=alice.headers)).json()]
    assert bodies[-1]["last_login_at"], "signed in: the time of it is shown"
    times = [value for body in bodies for value in _strings_like_times(body)]
    assert len(times) >= 8
    assert [value for value in times if not has_timezone(value)] == []


def _strings_like_times(value: object) -> list[str]:
    if isinstance(value, dict):
        return [found for item in value.values() for found in _strings_like_times(item)]
    if isinstance(value, list):
        return [found for item in value for found in _strings_like_times(item)]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", value):
        return [value]
    return []


async def test_the_json_export_is_what_the_schema_says(client: AsyncTestClient[Litestar], alice: ChatUser) -> None:
    turn = await ask(client, alice)
    exported = await client.get(f"{API}/conversations/{turn['conversation_id']}/export", headers=alice.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert exported.json()["conversation"]["id"] == turn["conversation_id"]
    markdown = await client.get(
        f"{API}/conversations/{turn['conversation_id']}/export", params={"format": "md"}, headers=alice.headers
    )
    assert markdown.headers["content-type"].startswith("text/markdown")

    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"][f"{API}/conversations/{{conversation_id}}/export"]["get"]
    content = operation["responses"]["200"]["content"]
    json_schema = content["application/json"]["schema"]
    assert json_schema.get("type") == "object" or "$ref" in json_schema
    assert content["text/markdown"]["schema"]["type"] == "string"

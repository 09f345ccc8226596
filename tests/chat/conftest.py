"""Chat test fixtures: users registered through the real auth API, and apps on the fake LLM server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.llm import factory as llm_factory
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.fake_llm import FakeLLMServer, running_fake_llm

PASSWORD = "a long enough test password 42"
CSRF_COOKIE = "medchat_csrf"


@dataclass
class ChatUser:
    id: str
    email: str
    headers: dict[str, str]


async def register(client: AsyncTestClient[Litestar], *, name: str = "user") -> ChatUser:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.org"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": name.title()}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return ChatUser(body["user"]["id"], email, {"Authorization": f"Bearer {body['access_token']}"})


async def sign_in_browser(client: AsyncTestClient[Litestar], user: ChatUser) -> dict[str, str]:
    """Sign ``client`` in with a session cookie, as the login form does; returns the CSRF header for posts."""
    await client.get("/login")
    csrf = client.cookies.get(CSRF_COOKIE, "")
    response = await client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "_csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code in (200, 302, 303), response.text
    return {"X-CSRFToken": client.cookies.get(CSRF_COOKIE, csrf)}


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``(event, data)`` pairs of an SSE body; JSON data is decoded, other data kept as text."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data:
            continue
        raw = "\n".join(data)
        try:
            events.append((name, json.loads(raw)))
        except json.JSONDecodeError:
            events.append((name, raw))
    return events


@pytest.fixture(autouse=True)
def no_local_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an API key answers come from the sources, even where the local model is installed.

    Tests marked ``local_model`` keep the real lookup. (There is no setting to turn the local model off
    yet; ``build_provider`` prefers it whenever it is installed.)
    """
    if request.node.get_closest_marker("local_model") is None:
        monkeypatch.setattr(llm_factory, "find_local_model", lambda: None)


@pytest.fixture
async def alice(client: AsyncTestClient[Litestar]) -> ChatUser:
    return await register(client, name="alice")


@pytest.fixture
async def bob(client: AsyncTestClient[Litestar]) -> ChatUser:
    return await register(client, name="bob")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The runtime opened in the test's own event loop, for calling services and Beanie directly.

    (The ``client`` fixture runs the app in its own loop; the MongoDB client is bound to one loop.)
    """
    opened = await Runtime.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply="Blood pressure above 140/90 mmHg is raised [1].") as server:
        yield server


@pytest.fixture
def remote_settings(settings: Settings, fake_llm: FakeLLMServer) -> Settings:
    """The test settings with a remote model: the fake server, one retry, short timeouts."""
    return settings.model_copy(
        update={
            "llm_api_key": "test-key",
            "llm_base_url": fake_llm.base_url,
            "llm_model": "fake/test-model",
            "llm_max_retries": 1,
            "llm_timeout_seconds": 1.0,
        }
    )


@pytest.fixture
async def remote_client(remote_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(remote_settings)) as test_client:
        yield test_client


def engine_of(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.runtime.chat_engine

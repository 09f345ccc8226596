"""Chat test fixtures: users registered through the real auth API, and apps on the fake LLM server.

(The helpers they use are in ``tests.support``: ``accounts``, ``sse``, ``app``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.llm import factory as llm_factory
from medchat.settings import Settings
from tests.support.accounts import ChatUser, register
from tests.support.fake_llm import FakeLLMServer, running_fake_llm


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

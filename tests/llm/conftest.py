"""Fixtures for the llm tests: a real fake LLM server per test and providers pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from medchat.llm.remote import RemoteProvider
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.llm import RemoteFactory

LANGSMITH_VARIABLES = (
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)


@pytest.fixture(autouse=True)
def no_langsmith(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing stays off (and off the internet) unless a test switches it on."""
    for name in LANGSMITH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm() as server:
        yield server


@pytest_asyncio.fixture
async def make_remote(fake_llm: FakeLLMServer) -> AsyncIterator[RemoteFactory]:
    """Build a RemoteProvider against the fake server; short timeouts and backoff keep tests fast."""
    providers: list[RemoteProvider] = []

    def make(**options: Any) -> RemoteProvider:
        defaults: dict[str, Any] = {
            "base_url": fake_llm.base_url,
            "api_key": "test-key",
            "model": "test/model",
            "timeout_seconds": 2.0,
            "max_retries": 2,
            "backoff_seconds": 0.01,
            "max_backoff_seconds": 0.05,
        }
        provider = RemoteProvider(**(defaults | options))
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()

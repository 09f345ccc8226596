"""Auth test fixtures: apps with other settings, and the stored users read directly.

(The sign-in helpers are in ``tests.support.accounts``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo import MongoClient

from medchat.app import create_app
from medchat.settings import Settings
from tests.support.app import AppFactory


@pytest.fixture
def make_client(settings: Settings) -> AppFactory:
    """``async with make_client(**overrides) as client``: an app on the test's stores with other settings."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
        own = Settings.load(**{**settings.model_dump(), **overrides})
        async with AsyncTestClient(
            app=create_app(own), base_url=overrides.get("public_url") or "http://testserver"
        ) as client:
            yield client

    return open_client


@pytest.fixture
def users_collection(settings: Settings) -> Any:
    """The users collection read directly (a second, synchronous client), to check what is really stored."""
    with MongoClient(settings.mongodb_uri, tz_aware=True) as mongo:
        yield mongo[settings.mongodb_database]["users"]

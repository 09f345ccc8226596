"""The app under test: running work on its event loop, and the types of the fixtures that build it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from litestar import Litestar
from litestar.testing import AsyncTestClient

T = TypeVar("T")

AppFactory = Callable[..., AbstractAsyncContextManager[AsyncTestClient[Litestar]]]
"""The ``make_client`` fixture: ``async with make_client(**overrides) as client``."""


async def in_app_loop(client: AsyncTestClient[Litestar], work: Awaitable[T]) -> T:
    """Await ``work`` on the app's event loop: the test client runs the app (and its store clients) in its own."""

    async def run() -> T:
        return await work

    return await asyncio.to_thread(client.blocking_portal.call, run)


def engine_of(client: AsyncTestClient[Litestar]) -> Any:
    """The chat engine of the app ``client`` runs."""
    return client.app.state.runtime.chat_engine

"""The per-process cache of principals: a repeated request reads no user from MongoDB, and a change made in
another process (a second auth service with its own Redis connections) takes effect here as soon as Redis
delivers it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from medchat.auth import Accounts
from medchat.auth.principal_cache import PrincipalCache
from medchat.platform.embedded import free_port
from medchat.platform.metrics import STORE_CALL_DURATION
from medchat.runtime import Runtime

PASSWORD = "correct horse battery staple 42"
CHANGE_DELIVERY_SECONDS = 1.0
"""How long to wait for Redis to deliver a change to the other process (it takes well under a millisecond;
entries live for a minute, so a change that was not delivered is not seen in this time)."""


def _count(operation: str) -> float:
    for metric in STORE_CALL_DURATION.collect():
        for sample in metric.samples:
            if (
                sample.name.endswith("_count")
                and sample.labels.get("store") == "mongodb"
                and sample.labels.get("operation") == operation
            ):
                return sample.value
    return 0.0


@pytest.fixture
async def other_process(runtime: Runtime) -> AsyncIterator[Accounts]:
    """A second auth service with its own Redis connections on the same stores: what another web worker or
    pod holds."""
    redis = Redis.from_url(runtime.stores.redis_url)
    accounts = Accounts(settings=runtime.settings, redis=redis, events=runtime.events)
    try:
        yield accounts
    finally:
        await accounts.close()
        await redis.aclose()


async def signed_in(accounts: Accounts) -> tuple[str, str]:
    account = await accounts.register(email=f"cache-{uuid.uuid4().hex[:8]}@example.org", password=PASSWORD)
    tokens = await accounts.issue_tokens(account)
    return account.id, tokens.access_token


async def until_subscribed(cache: PrincipalCache) -> None:
    for _ in range(100):
        if cache.active:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the principal cache never subscribed to changes")


async def test_a_repeated_request_reads_no_user_from_mongodb(runtime: Runtime) -> None:
    accounts = runtime.services.get(Accounts)
    user_id, token = await signed_in(accounts)
    assert (await accounts.principal_from_access_token(token)).id == user_id
    await until_subscribed(accounts.principals)
    assert (await accounts.principal_from_access_token(token)).id == user_id  # read, then kept

    finds_before = _count("find")
    principal = await accounts.principal_from_access_token(token)
    assert principal is not None and principal.id == user_id
    assert _count("find") == finds_before


async def test_a_disable_in_another_process_ends_the_cached_principal_here(
    runtime: Runtime, other_process: Accounts
) -> None:
    here, there = runtime.services.get(Accounts), other_process
    user_id, token = await signed_in(here)
    await here.principal_from_access_token(token)
    await until_subscribed(here.principals)
    assert await here.principal_from_access_token(token) is not None  # now cached here

    await there.update_user(user_id, disabled=True, actor="test")

    revoked = False
    for _ in range(int(CHANGE_DELIVERY_SECONDS / 0.01)):
        if await here.principal_from_access_token(token) is None:
            revoked = True
            break
        await asyncio.sleep(0.01)
    assert revoked, "a disabled user's cached principal outlived the change"


async def test_a_role_change_in_another_process_is_seen_here(runtime: Runtime, other_process: Accounts) -> None:
    here, there = runtime.services.get(Accounts), other_process
    user_id, token = await signed_in(here)
    await here.principal_from_access_token(token)
    await until_subscribed(here.principals)
    assert (await here.principal_from_access_token(token)).role == "user"

    await there.update_user(user_id, role="admin", actor="test")

    role = "user"
    for _ in range(int(CHANGE_DELIVERY_SECONDS / 0.01)):
        role = (await here.principal_from_access_token(token)).role
        if role == "admin":
            break
        await asyncio.sleep(0.01)
    assert role == "admin"


async def test_without_redis_nothing_is_cached() -> None:
    unreachable = Redis(port=free_port(), socket_connect_timeout=0.2)
    cache = PrincipalCache(unreachable)
    loads: list[str] = []

    async def load(user_id: str) -> dict[str, str]:
        loads.append(user_id)
        return {"email": "a@example.org", "role": "user"}

    try:
        for _ in range(3):
            assert await cache.get("someone", load) == {"email": "a@example.org", "role": "user"}
            await asyncio.sleep(0.05)
        assert not cache.active
        assert loads == ["someone"] * 3
    finally:
        await cache.close()
        await unreachable.aclose()

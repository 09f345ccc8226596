"""Failed-login limits per account and per address, kept in Redis (so every worker sees the same counts)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from medchat.auth.ratelimit import LoginLimiter
from medchat.platform.errors import RateLimited
from medchat.settings import Settings
from tests.support.accounts import RegisterUser, post_form
from tests.support.app import AppFactory


async def login(client: AsyncTestClient[Litestar], email: str, password: str = "wrong password 99") -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_sixth_failed_login_in_a_minute_gets_429(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    for _ in range(5):
        assert (await login(client, user.email)).status_code == 401
    sixth = await login(client, user.email)
    assert sixth.status_code == 429
    body = sixth.json()
    assert body["code"] == "rate_limited"
    assert 55 <= int(sixth.headers["retry-after"]) <= 60
    assert body["retry_after"] == int(sixth.headers["retry-after"])
    assert "Try again in" in body["detail"]
    # Even the right password waits: the account is locked for everyone, not just for bad guesses.
    assert (await login(client, user.email, user.password)).status_code == 429
    # Another account from the same address is unaffected.
    other = await register_user(client)
    assert (await login(client, other.email, other.password)).status_code == 200


async def test_unknown_emails_are_limited_too(client: AsyncTestClient[Litestar]) -> None:
    answers = [(await login(client, "Nobody@Example.org")).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
    assert (await login(client, "nobody@example.org")).status_code == 429, "the limit is per normalised email"


async def test_a_successful_login_clears_the_account_failures(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    for _ in range(4):
        assert (await login(client, user.email)).status_code == 401
    assert (await login(client, user.email, user.password)).status_code == 200
    answers = [(await login(client, user.email)).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]


async def test_parallel_guesses_cannot_slip_past_the_limit(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    answers = await asyncio.gather(*(login(client, user.email) for _ in range(12)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * 5 + [429] * 7


async def test_per_address_limit(make_client: AppFactory) -> None:
    async with make_client(login_attempts_per_minute_per_address=8) as client:
        answers = [(await login(client, f"person{index}@example.org")).status_code for index in range(9)]
    assert answers == [401] * 8 + [429]


async def test_counts_are_shared_by_every_app_on_the_same_redis(make_client: AppFactory) -> None:
    """Two apps (as two workers would be) on one Redis: failures seen by one count for the other."""
    async with make_client() as first:
        assert [(await login(first, "shared@example.org")).status_code for _ in range(3)] == [401] * 3
    async with make_client() as second:
        assert [(await login(second, "shared@example.org")).status_code for _ in range(3)] == [401, 401, 429]


async def test_the_login_form_is_limited_too(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    user = await register_user(client)
    for _ in range(5):
        page = await post_form(client, "/login", {"email": user.email, "password": "wrong password 99"})
        assert page.status_code == 401
    page = await post_form(client, "/login", {"email": user.email, "password": user.password})
    assert page.status_code == 429
    assert "retry-after" in page.headers
    assert "Too many failed sign-in attempts" in page.text
    assert "medchat_session" not in page.cookies


class FakeClock:
    """Seconds since the epoch that move only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_the_window_slides(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    clock = FakeClock()
    try:
        limiter = LoginLimiter(
            redis, per_account_and_address=2, per_account=100, per_address=100, window_seconds=60, clock=clock
        )
        await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        clock.advance(20)
        await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        clock.advance(10)
        with pytest.raises(RateLimited) as refused:
            await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        assert refused.value.headers["Retry-After"] == "30", "until the oldest failure leaves the window"
        clock.advance(29)
        with pytest.raises(RateLimited):
            await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        clock.advance(1.5)  # the first failure has left the window; the second one is still in it
        await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        with pytest.raises(RateLimited) as again:
            await limiter.reserve(email_normalized="slide@example.org", address="10.0.0.1")
        assert again.value.headers["Retry-After"] == "20", "now until the second failure leaves it"
        keys = await redis.keys("medchat:auth:login-failures:*")
        assert keys and all(b"slide@example.org" not in key for key in keys), "emails are not kept in key names"
        ttls = [await redis.ttl(key) for key in keys]
        assert all(0 < ttl <= 60 for ttl in ttls), "keys expire with the window"
    finally:
        await redis.aclose()

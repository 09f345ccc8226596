"""Fixed-window budgets in the real Redis: atomic under concurrency, aligned windows, costs known afterwards.

Windows move with an injected clock, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from medchat.platform.quota import Quota
from medchat.settings import Settings

HOUR = 3600
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(str(settings.redis_url))
    yield client
    await client.aclose()


async def test_takes_until_the_limit_then_refuses_without_taking(redis: Redis) -> None:
    clock = Clock(NOON + 20 * 60)
    quota = Quota(redis, name="t", window_seconds=HOUR, clock=clock)
    first = await quota.take("alice", limit=2)
    second = await quota.take("alice", limit=2)
    refused = await quota.take("alice", limit=2)
    assert [first.allowed, second.allowed, refused.allowed] == [True, True, False]
    assert (first.remaining, second.remaining, refused.remaining) == (1, 0, 0)
    assert refused.used == 2, "a refused request takes nothing"
    assert refused.resets_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC), "windows end on the hour"
    assert refused.retry_after(clock.now) == 40 * 60
    assert (await quota.take("bob", limit=2)).allowed, "each key has its own budget"
    ttl = await redis.ttl(f"medchat:quota:t:alice:{int(clock.now // HOUR)}")
    assert HOUR < ttl <= HOUR + 60, "counters expire with their window"

    clock.now = NOON + HOUR  # the next window
    again = await quota.take("alice", limit=2)
    assert again.allowed and again.used == 1


async def test_parallel_takes_never_pass_the_limit(redis: Redis) -> None:
    quota = Quota(redis, name="t", window_seconds=HOUR, clock=Clock(NOON))
    outcomes = await asyncio.gather(*(quota.take("alice", limit=5) for _ in range(30)))
    assert sum(outcome.allowed for outcome in outcomes) == 5
    assert (await quota.status("alice", limit=5)).used == 5


async def test_costs_counted_afterwards_close_the_budget_for_the_next_check(redis: Redis) -> None:
    quota = Quota(redis, name="tokens", window_seconds=24 * HOUR, clock=Clock(NOON))
    assert (await quota.take("alice", limit=100, cost=0)).allowed, "a check takes nothing"
    assert (await quota.add("alice", 60, limit=100)).remaining == 40
    assert (await quota.take("alice", limit=100, cost=0)).allowed
    over = await quota.add("alice", 70, limit=100)
    assert (over.used, over.remaining) == (130, 0), "usage known afterwards may pass the limit"
    refused = await quota.take("alice", limit=100, cost=0)
    assert not refused.allowed
    assert refused.resets_at == datetime(2026, 11, 27, 0, 0, tzinfo=UTC), "day windows end at midnight UTC"


async def test_a_limit_of_zero_is_unlimited(redis: Redis) -> None:
    quota = Quota(redis, name="t", window_seconds=HOUR, clock=Clock(NOON))
    outcomes = [await quota.take("alice", limit=0) for _ in range(5)]
    assert all(outcome.allowed for outcome in outcomes)
    assert outcomes[-1].unlimited and outcomes[-1].remaining is None
    assert outcomes[-1].used == 5, "still counted, so a limit set later applies at once"


async def test_one_trip_takes_a_question_only_while_the_checked_budget_lasts(redis: Redis) -> None:
    clock = Clock(NOON)
    tokens = Quota(redis, name="tokens", window_seconds=24 * HOUR, clock=clock)
    questions = Quota(redis, name="questions", window_seconds=HOUR, clock=clock)

    checked, taken = await questions.take_one_unless_used_up("bob", limit=2, checked=tokens, checked_limit=100)
    assert (checked.allowed, checked.used, taken.allowed, taken.used) == (True, 0, True, 1)

    await tokens.add("bob", 100)
    checked, taken = await questions.take_one_unless_used_up("bob", limit=2, checked=tokens, checked_limit=100)
    assert (checked.allowed, checked.used, taken.allowed) == (False, 100, False)
    assert (await questions.status("bob", limit=2)).used == 1, "a refused question took from the budget"

    checked, taken = await questions.take_one_unless_used_up("bob", limit=2, checked=tokens, checked_limit=0)
    assert (checked.allowed, taken.allowed, taken.used) == (True, True, 2)
    checked, taken = await questions.take_one_unless_used_up("bob", limit=2, checked=tokens, checked_limit=0)
    assert (checked.allowed, taken.allowed, taken.used) == (True, False, 2)
    assert taken.retry_after(NOON) == HOUR

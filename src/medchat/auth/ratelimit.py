"""Limits on guessing and sign-up, in Redis so every worker shares them.

Each limit is a sliding window per key (a sorted set of attempt times). An attempt is reserved before
the password is checked, atomically with the count, so parallel guesses cannot slip past a limit; an
attempt that turns out right is released. Refused attempts are not recorded, so a lockout ends one window
after the last counted attempt. The window is computed from the injected ``clock`` (the scores), not from
Redis key expiry, which only tidies keys away; so a test can move time forward.
Litestar's ``RateLimitConfig`` counts requests per client, not failures per account, so it does not fit.

Failed sign-ins are limited three ways, so a stranger cannot lock the owner out: tightly per account *and*
client address (someone guessing from one place), loosely per account (guessing spread over many
addresses), and per address (one place guessing many accounts).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from medchat.auth.tokens import digest
from medchat.platform.errors import RateLimited

WINDOW_SECONDS = 60
HOUR_SECONDS = 3600
_PREFIX = "medchat:auth:"
_NO_ADDRESS = "-"


@dataclass(frozen=True)
class Limit:
    key: str
    allowed: int


@dataclass(frozen=True)
class Attempt:
    keys: tuple[str, ...]
    member: str


class SlidingWindow:
    """Counts attempts under several limits at once; ``reserve`` raises ``RateLimited`` when any is full."""

    def __init__(
        self, redis: Redis, *, window_seconds: int, refusal: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._window = window_seconds
        self._refusal = refusal
        self._clock = clock

    async def reserve(self, limits: Sequence[Limit]) -> Attempt:
        """Count this attempt under every limit, or raise ``RateLimited`` with the seconds until one more fits."""
        now = self._clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for limit in limits:
                pipe.zremrangebyscore(limit.key, 0, now - self._window)
                pipe.zadd(limit.key, {member: now})
                pipe.zcard(limit.key)
                pipe.zrange(limit.key, 0, 0, withscores=True)
                pipe.expire(limit.key, self._window)
            results = await pipe.execute()
        retry_after = 0.0
        for index, limit in enumerate(limits):
            count, oldest = results[index * 5 + 2], results[index * 5 + 3]
            if count > limit.allowed:
                retry_after = max(retry_after, oldest[0][1] + self._window - now)
        attempt = Attempt(keys=tuple(limit.key for limit in limits), member=member)
        if retry_after > 0:
            await self.release(attempt)
            seconds = max(1, math.ceil(retry_after))
            raise RateLimited(self._refusal.format(seconds=seconds), retry_after=seconds)
        return attempt

    async def release(self, attempt: Attempt) -> None:
        """Forget a reserved attempt that turned out not to count (a right password)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in attempt.keys:
                pipe.zrem(key, attempt.member)
            await pipe.execute()


class LoginLimiter:
    """Failed sign-ins per account and address (tight), per account (roomy) and per address."""

    def __init__(
        self,
        redis: Redis,
        *,
        per_account_and_address: int,
        per_account: int,
        per_address: int,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._limits = (per_account_and_address, per_account, per_address)
        self._window = SlidingWindow(
            redis,
            window_seconds=window_seconds,
            refusal="Too many failed sign-in attempts. Try again in {seconds} seconds.",
            clock=clock,
        )

    async def reserve(self, *, email_normalized: str, address: str | None) -> Attempt:
        """Count this attempt, or raise ``RateLimited`` with the seconds until one more is allowed."""
        prefix = _PREFIX + "login-failures:"
        account = digest(email_normalized)
        per_account_and_address, per_account, per_address = self._limits
        limits = [
            Limit(f"{prefix}account-address:{account}:{address or _NO_ADDRESS}", per_account_and_address),
            Limit(f"{prefix}account:{account}", per_account),
        ]
        if address:
            limits.append(Limit(f"{prefix}address:{address}", per_address))
        return await self._window.reserve(limits)

    async def release(self, attempt: Attempt) -> None:
        await self._window.release(attempt)

    async def succeeded(self, attempt: Attempt) -> None:
        """A correct password: release the attempt and clear this account's failures from this address.

        The account-wide and address counts stay: a sign-in must not wipe what others tried."""
        await self.release(attempt)
        await self._redis.delete(attempt.keys[0])


class RegistrationLimiter:
    """Sign-ups per client address, every attempt counted (a refused one probes addresses too)."""

    def __init__(
        self,
        redis: Redis,
        *,
        per_address: int,
        window_seconds: int = HOUR_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_address = per_address
        self._window = SlidingWindow(
            redis,
            window_seconds=window_seconds,
            refusal="Too many accounts were created from your network. Try again in {seconds} seconds.",
            clock=clock,
        )

    async def reserve(self, *, address: str | None) -> None:
        key = f"{_PREFIX}registrations:address:{address or _NO_ADDRESS}"
        await self._window.reserve([Limit(key, self._per_address)])


class PasswordConfirmLimiter:
    """Wrong current passwords per account (changing the password, deleting the account): a stolen session
    or token must not become a way to guess the password."""

    def __init__(
        self,
        redis: Redis,
        *,
        per_account: int,
        window_seconds: int = HOUR_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_account = per_account
        self._window = SlidingWindow(
            redis,
            window_seconds=window_seconds,
            refusal="Too many wrong passwords. Try again in {seconds} seconds.",
            clock=clock,
        )

    async def reserve(self, *, user_id: str) -> Attempt:
        key = f"{_PREFIX}password-failures:account:{user_id}"
        return await self._window.reserve([Limit(key, self._per_account)])

    async def release(self, attempt: Attempt) -> None:
        await self._window.release(attempt)

"""Failed-login limits per account and per client address, in Redis so every worker shares them.

A sliding window of one minute per key (a sorted set of attempt times). Each attempt is reserved
before the password is checked, atomically with the count, so parallel guesses cannot slip past the
limit; a successful login releases its reservation and clears the account's failures. Refused
attempts are not recorded, so the lockout ends one minute after the last counted failure.
The window is computed from the injected ``clock`` (the scores), not from Redis key expiry, which only
tidies keys away; so a test can move time forward.
Litestar's ``RateLimitConfig`` counts requests per client, not failures per account, so it does not fit.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from medchat.auth.tokens import digest
from medchat.platform.errors import RateLimited

WINDOW_SECONDS = 60
_PREFIX = "medchat:auth:login-failures:"


@dataclass(frozen=True)
class Attempt:
    keys: tuple[str, ...]
    member: str


class LoginLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        per_account: int,
        per_address: int,
        window_seconds: int = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._limits = {"account": per_account, "address": per_address}
        self._window = window_seconds
        self._clock = clock

    async def reserve(self, *, email_normalized: str, address: str | None) -> Attempt:
        """Count this attempt, or raise ``RateLimited`` with the seconds until one more is allowed."""
        keyed = [("account", _PREFIX + "account:" + digest(email_normalized))]
        if address:
            keyed.append(("address", _PREFIX + "address:" + address))
        now = self._clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for _, key in keyed:
                pipe.zremrangebyscore(key, 0, now - self._window)
                pipe.zadd(key, {member: now})
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.expire(key, self._window)
            results = await pipe.execute()
        retry_after = 0.0
        for index, (kind, _) in enumerate(keyed):
            count, oldest = results[index * 5 + 2], results[index * 5 + 3]
            if count > self._limits[kind]:
                retry_after = max(retry_after, oldest[0][1] + self._window - now)
        attempt = Attempt(keys=tuple(key for _, key in keyed), member=member)
        if retry_after > 0:
            await self.release(attempt)
            seconds = max(1, math.ceil(retry_after))
            raise RateLimited(f"Too many failed sign-in attempts. Try again in {seconds} seconds.", retry_after=seconds)
        return attempt

    async def release(self, attempt: Attempt) -> None:
        """Forget a reserved attempt that turned out not to be a failure."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in attempt.keys:
                pipe.zrem(key, attempt.member)
            await pipe.execute()

    async def succeeded(self, attempt: Attempt) -> None:
        """A correct password: release the attempt and clear the account's failures (not the address's)."""
        await self.release(attempt)
        await self._redis.delete(attempt.keys[0])

"""Budgets per key and fixed window, in Redis so every process shares them: "60 per hour", "200k a day".

Windows are aligned to the epoch (an hour window resets on the hour, a day window at 00:00 UTC), so a
person can be told when their budget comes back. Each check-and-take is one Lua script, so parallel
requests cannot overspend; the counter expires with its window.

This is not ``medchat.auth``'s login limiter: that one counts failures in a sliding minute and
releases an attempt that turns out to be a success, which a fixed budget has no use for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

_PREFIX = "medchat:quota:"

# KEYS[1] the window's counter; ARGV: cost, limit (0 = none), ttl seconds.
# Refuses (taking nothing) when the cost would pass the limit; a cost of 0 is refused once nothing is left.
_TAKE = """
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if limit > 0 and used + math.max(cost, 1) > limit then
  return {0, used}
end
if cost > 0 then
  used = redis.call('INCRBY', KEYS[1], cost)
  if redis.call('TTL', KEYS[1]) < 0 then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  end
end
return {1, used}
"""

# KEYS[1] the window's counter; ARGV: amount, ttl seconds. Adds without a limit (usage known afterwards).
_ADD = """
local used = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return used
"""


# KEYS[1] a checked budget's counter, KEYS[2] the taken one's; ARGV: checked limit, taken limit (0 = none), ttl of
# the taken one. Takes 1 from the second when the first is not used up and the second has 1 left: both in one trip.
_CHECK_THEN_TAKE = """
local checked_limit = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local checked = tonumber(redis.call('GET', KEYS[1]) or '0')
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if checked_limit > 0 and checked + 1 > checked_limit then
  return {0, checked, 0, used}
end
if limit > 0 and used + 1 > limit then
  return {1, checked, 0, used}
end
used = redis.call('INCRBY', KEYS[2], 1)
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
end
return {1, checked, 1, used}
"""


@dataclass(frozen=True, slots=True)
class Budget:
    """Where one key stands in the current window. ``limit`` 0 means unlimited."""

    name: str
    limit: int
    used: int
    resets_at: datetime
    allowed: bool = True
    """False when the request that asked was refused."""

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0

    @property
    def remaining(self) -> int | None:
        return None if self.unlimited else max(self.limit - self.used, 0)

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until the window resets (at least 1)."""
        now = time.time() if now is None else now
        return max(1, math.ceil(self.resets_at.timestamp() - now))


class Quota:
    """A named budget of ``window_seconds`` windows; keys are usually user ids."""

    def __init__(self, redis: Redis, *, name: str, window_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self.name = name
        self.window_seconds = window_seconds
        self._clock = clock
        self._take = redis.register_script(_TAKE)
        self._add = redis.register_script(_ADD)
        self._check_then_take = redis.register_script(_CHECK_THEN_TAKE)

    def _window(self) -> tuple[int, datetime]:
        index = int(self._clock() // self.window_seconds)
        return index, datetime.fromtimestamp((index + 1) * self.window_seconds, UTC)

    def _key(self, key: str, index: int) -> str:
        return f"{_PREFIX}{self.name}:{key}:{index}"

    async def take(self, key: str, *, limit: int, cost: int = 1) -> Budget:
        """Take ``cost`` from the budget when it fits; ``allowed`` says whether it did (nothing taken if not).

        With ``cost=0`` this is a check: refused once the budget is used up.
        """
        index, resets_at = self._window()
        if limit <= 0 and cost <= 0:
            return await self.status(key, limit=limit)
        allowed, used = await self._take(
            keys=[self._key(key, index)], args=[cost, max(limit, 0), self.window_seconds + 60]
        )
        return Budget(self.name, limit, int(used), resets_at, allowed=bool(allowed))

    async def take_one_unless_used_up(
        self, key: str, *, limit: int, checked: Quota, checked_limit: int
    ) -> tuple[Budget, Budget]:
        """``checked.take(key, limit=checked_limit, cost=0)`` then, if allowed, ``take(key, limit=limit)``, in one
        round trip: ``(checked budget, this budget)``, ``allowed`` on each as those two calls would say (this one's
        False too when the checked one refused, and nothing is taken)."""
        index, resets_at = self._window()
        checked_index, checked_resets_at = checked._window()
        checked_allowed, checked_used, allowed, used = await self._check_then_take(
            keys=[checked._key(key, checked_index), self._key(key, index)],
            args=[max(checked_limit, 0), max(limit, 0), self.window_seconds + 60],
        )
        return (
            Budget(checked.name, checked_limit, int(checked_used), checked_resets_at, allowed=bool(checked_allowed)),
            Budget(self.name, limit, int(used), resets_at, allowed=bool(allowed)),
        )

    async def add(self, key: str, amount: int, *, limit: int = 0) -> Budget:
        """Count ``amount`` already spent (may pass the limit: the next ``take`` is then refused)."""
        index, resets_at = self._window()
        if amount <= 0:
            return await self.status(key, limit=limit)
        used = await self._add(keys=[self._key(key, index)], args=[amount, self.window_seconds + 60])
        return Budget(self.name, limit, int(used), resets_at)

    async def status(self, key: str, *, limit: int) -> Budget:
        index, resets_at = self._window()
        used = await self._redis.get(self._key(key, index))
        return Budget(self.name, limit, int(used or 0), resets_at)

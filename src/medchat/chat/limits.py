"""Per-user budgets: questions per clock hour and model tokens per UTC day, by role (settings; 0 = unlimited).

``check_and_take`` runs before a new question is stored: it refuses with 429 ``rate_limited`` (naming the
budget and when it resets) when the day's tokens are used up or the hour's questions are; otherwise it
takes one question. ``count_tokens`` adds an answer's usage once the answer is complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from medchat.chat.schemas import BudgetOut, LimitsOut
from medchat.platform.errors import RateLimited
from medchat.platform.quota import Budget, Quota
from medchat.settings import Settings

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True, slots=True)
class Budgets:
    messages: Budget
    tokens: Budget

    def out(self) -> LimitsOut:
        return LimitsOut(messages=budget_out(self.messages), tokens=budget_out(self.tokens))

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` for the question budget (none when it is unlimited)."""
        return rate_limit_headers(self.messages)


def rate_limit_headers(budget: Budget) -> dict[str, str]:
    """``X-RateLimit-Limit/Remaining/Reset`` (epoch seconds) and ``-Resource`` (``messages`` or ``tokens``)."""
    if budget.unlimited:
        return {}
    return {
        "X-RateLimit-Limit": str(budget.limit),
        "X-RateLimit-Remaining": str(budget.remaining),
        "X-RateLimit-Reset": str(int(budget.resets_at.timestamp())),
        "X-RateLimit-Resource": budget.name.removeprefix("chat-"),
    }


def budget_out(budget: Budget) -> BudgetOut:
    return BudgetOut(
        limit=None if budget.unlimited else budget.limit,
        remaining=budget.remaining,
        used=budget.used,
        resets_at=budget.resets_at,
    )


def unlimited() -> LimitsOut:
    """The answer of ``GET /limits`` for an engine built without limits."""
    now = time.time()

    def budget(name: str, window: int) -> Budget:
        return Budget(name, 0, 0, datetime.fromtimestamp((now // window + 1) * window, UTC))

    return Budgets(budget("chat-messages", HOUR), budget("chat-tokens", DAY)).out()


class ChatLimits:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._messages = Quota(redis, name="chat-messages", window_seconds=HOUR)
        self._tokens = Quota(redis, name="chat-tokens", window_seconds=DAY)
        self._limits = {
            False: (settings.messages_per_hour_user, settings.tokens_per_day_user),
            True: (settings.messages_per_hour_admin, settings.tokens_per_day_admin),
        }

    async def status(self, user_id: str, *, is_admin: bool) -> Budgets:
        messages, tokens = self._limits[is_admin]
        return Budgets(
            await self._messages.status(user_id, limit=messages), await self._tokens.status(user_id, limit=tokens)
        )

    async def check_and_take(self, user_id: str, *, is_admin: bool) -> Budgets:
        """Take one question from the hour's budget, or raise ``RateLimited`` (taking nothing)."""
        message_limit, token_limit = self._limits[is_admin]
        tokens, messages = await self._messages.take_one_unless_used_up(
            user_id, limit=message_limit, checked=self._tokens, checked_limit=token_limit
        )
        if not tokens.allowed:
            raise _refusal(
                tokens,
                f"You have used today's budget of {token_limit:,} tokens for answers.",
            )
        if not messages.allowed:
            raise _refusal(messages, f"You have sent {message_limit} questions this hour, the most allowed.")
        return Budgets(messages, tokens)

    async def count_tokens(self, user_id: str, *, is_admin: bool, tokens: int) -> Budget:
        return await self._tokens.add(user_id, tokens, limit=self._limits[is_admin][1])


def _refusal(budget: Budget, what: str) -> RateLimited:
    retry_after = budget.retry_after()
    when = _resets(budget.resets_at, retry_after)
    refusal = RateLimited(
        f"{what} It resets at {when}.",
        retry_after=retry_after,
        budget=budget.name.removeprefix("chat-"),
        limit=budget.limit,
        resets_at=budget.resets_at.isoformat().replace("+00:00", "Z"),  # as the JSON API writes times
    )
    refusal.headers.update(rate_limit_headers(budget))
    return refusal


def _resets(at: datetime, seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes < 120 else f"{round(minutes / 60)} hours"
    return f"{at:%H:%M} UTC (in {wait})"

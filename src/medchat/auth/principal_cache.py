"""The users behind recent requests, per process: a signed-in person's next request skips the MongoDB read.

A change to anything a principal is made of (role, disabled, token version, name, deletion) goes through
``Accounts``, which calls ``forget``: the entry is dropped here and the user id is published on Redis, and
every other process drops it when the message arrives. So a disable or a password change still takes
effect at once everywhere.

That holds only while the messages arrive, so a process caches only while its subscription is confirmed:
until then, and whenever the connection breaks, every request reads MongoDB, and everything cached is
forgotten when it subscribes again (a message may have been missed meanwhile). A read that was under way
while any change arrived is not kept. Entries also expire after ``ttl_seconds``, a safety net only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

CHANNEL = "medchat:auth:principal-changed"
RESUBSCRIBE_SECONDS = 1.0
WAIT_SECONDS = 1.0

Loader = Callable[[str], Awaitable[dict[str, Any] | None]]


class PrincipalCache:
    def __init__(self, redis: Redis, *, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._changes = 0
        """Counts every change heard of: a read that saw it move may have read the old user."""
        self._subscribed = False
        self._listener: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Whether entries are used now (the subscription to changes is confirmed)."""
        return self._subscribed

    async def get(self, user_id: str, load: Loader) -> dict[str, Any] | None:
        """The user's principal fields: cached, or ``load(user_id)`` (a missing user is never cached)."""
        self._listen()
        if self._subscribed:
            entry = self._entries.get(user_id)
            if entry is not None and entry[0] > time.monotonic():
                return entry[1]
        changes_before = self._changes
        found = await load(user_id)
        if found is not None and self._subscribed and self._changes == changes_before:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[user_id] = (time.monotonic() + self._ttl, found)
        return found

    async def forget(self, user_id: str) -> None:
        """After ``user_id`` changed: drop it here, then tell every other process."""
        self._drop(user_id)
        await self._redis.publish(CHANNEL, user_id)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._forget_all(subscribed=False)

    def _drop(self, user_id: str) -> None:
        self._changes += 1
        self._entries.pop(user_id, None)

    def _forget_all(self, *, subscribed: bool) -> None:
        self._changes += 1
        self._entries.clear()
        self._subscribed = subscribed

    def _listen(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._follow_changes(), name="principal-cache")

    async def _follow_changes(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    # Waits at most a second at a time: a blocking read would trip the client's socket timeout.
                    message = await pubsub.get_message(timeout=WAIT_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._forget_all(subscribed=True)
                    elif message["type"] == "message":
                        data = message["data"]
                        self._drop(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis away: read MongoDB on every request until it is back
                log.info("principal cache off until Redis answers", error=str(error))
            finally:
                self._forget_all(subscribed=False)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

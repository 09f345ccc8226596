"""Which medchat processes are alive, so that work a dead one left behind can be repaired (and live work left alone).

Every process that opens the runtime has an instance id and keeps ``medchat:instance:<id>`` in Redis,
refreshed every few seconds with a short TTL. Answers and ingestion jobs carry the id of the instance
running them; a sweep repairs one only when its owner's key has lapsed, so a crash is repaired within
seconds of the TTL while a new or busy process never touches another's live work.

A live owner whose event loop stalls for longer than the TTL, or that cannot reach Redis for that long,
counts as dead: its work may then be failed or requeued while it still runs. The writes that finish such
work are conditional, so the slower of the two writes loses instead of overwriting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

KEY_PREFIX = "medchat:instance:"


def new_instance_id() -> str:
    """Host, pid and a random part: readable in logs, unique across restarts and pods."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class InstanceHeartbeat:
    """This process's instance id and its heartbeat key; also answers which other instances are alive."""

    def __init__(self, redis: Redis, *, ttl_seconds: float, interval_seconds: float, instance_id: str | None = None):
        self.id = instance_id or new_instance_id()
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.id

    async def start(self) -> None:
        """Beat once (so work stamped from now on has a live owner), then every ``interval_seconds``."""
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever(), name=f"instance-heartbeat-{self.id}")

    async def beat(self) -> None:
        await self._redis.set(self.key, "1", px=self._ttl_ms)

    async def stop(self) -> None:
        """Stop beating and drop the key: what this process still owned is orphaned from now on."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._redis.delete(self.key)

    async def alive(self, instance_ids: Iterable[str]) -> set[str]:
        """The ids among ``instance_ids`` whose heartbeat is fresh (this process counts as alive).

        Raises when Redis does not answer: callers then repair nothing rather than guess."""
        wanted = set(instance_ids)
        found = wanted & {self.id}
        others = sorted(wanted - found)
        if others:
            values = await self._redis.mget([KEY_PREFIX + instance_id for instance_id in others])
            found |= {instance_id for instance_id, value in zip(others, values, strict=True) if value is not None}
        return found

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.beat()
            except Exception as error:  # noqa: BLE001 - Redis may come back; the next beat tries again
                log.warning("instance heartbeat failed", instance=self.id, error=str(error))


async def repeat_every(seconds: float, work: Callable[[], Awaitable[object]], *, name: str) -> None:
    """Run ``work`` now and then every ``seconds`` until cancelled; a failing run is logged, not fatal."""
    this_task = asyncio.current_task()
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the next run tries again
            log.warning("periodic work failed", work=name, error=str(error))
        if this_task is not None and this_task.cancelling():
            # A store client swallowed the cancellation mid-call (PyMongo can): stop anyway, or the
            # shutdown waiting for this task waits for ever.
            raise asyncio.CancelledError
        await asyncio.sleep(seconds)

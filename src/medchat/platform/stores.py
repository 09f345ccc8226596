"""Connections to MongoDB (through Beanie) and Redis, with embedded stand-ins when no URL is set.

``Stores.open`` is the one way any process (the web app, the worker, a CLI command) reaches the data:
with URLs configured it just connects; without them it takes the data-dir lock and starts the
embedded servers (and restarts one that dies, for as long as the stores are open), or, when ``medchat
serve`` already runs on that data dir, joins its servers through the runtime file it leaves there
(0600: it holds the Redis password and the MongoDB socket's path).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from beanie import Document, init_beanie
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from medchat.platform.data_dir import DataDirInUse, DataDirLock, write_private
from medchat.platform.embedded import ChildServer, EmbeddedMongo, EmbeddedRedis, supervise
from medchat.platform.store_monitoring import MongoCommandMonitor, TimedRedis
from medchat.settings import Settings

log = structlog.get_logger(__name__)

RUNTIME_FILE = "run/stores.json"
PING_TIMEOUT_SECONDS = 2.0


@dataclass
class Stores:
    """Open store clients plus whatever embedded servers this process owns."""

    settings: Settings
    mongodb_uri: str
    redis_url: str
    mongo: AsyncMongoClient
    redis: Redis
    embedded: list[ChildServer] = field(default_factory=list)
    lock: DataDirLock | None = None
    joined: bool = False
    """True when these are the embedded servers of another medchat process on the same data dir."""
    supervisors: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def database(self):
        return self.mongo[self.settings.mongodb_database]

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        document_models: Sequence[type[Document]],
        join_running: bool = False,
    ) -> Stores:
        """Connect, starting embedded servers for every store without a URL.

        ``join_running``: when another medchat holds the data dir, connect to its embedded servers
        instead of failing (CLI commands use this; ``serve`` does not).
        """
        mongodb_uri, redis_url = settings.mongodb_uri, settings.redis_url
        embedded: list[ChildServer] = []
        lock: DataDirLock | None = None
        joined = False
        if mongodb_uri is None or redis_url is None:
            try:
                lock = DataDirLock(settings.data_dir).acquire()
            except DataDirInUse:
                running = read_runtime_file(settings.data_dir) if join_running else None
                if running is None:
                    raise
                mongodb_uri = mongodb_uri or running["mongodb_uri"]
                redis_url = redis_url or running["redis_url"]
                joined = True
            else:
                try:
                    # Started from this thread, not a pool thread: PR_SET_PDEATHSIG fires when the
                    # starting thread exits. Nothing is served yet, so blocking here costs nothing.
                    embedded = _start_embedded(settings, mongodb_uri, redis_url)
                except BaseException:
                    lock.release()
                    raise
                by_name = {server.name: server.url for server in embedded}
                mongodb_uri = mongodb_uri or by_name["mongodb"]
                redis_url = redis_url or by_name["redis"]
                _write_runtime_file(settings.data_dir, mongodb_uri=mongodb_uri, redis_url=redis_url)

        timeout_ms = int(settings.store_timeout_seconds * 1000)
        mongo: AsyncMongoClient = AsyncMongoClient(
            mongodb_uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,  # a paused server answers 503 instead of holding requests forever
            **_durability(settings),
            event_listeners=[MongoCommandMonitor()],
        )
        redis = TimedRedis.from_url(
            redis_url,
            decode_responses=False,
            socket_timeout=settings.store_timeout_seconds,
            socket_connect_timeout=settings.store_timeout_seconds,
        )
        stores = cls(settings, mongodb_uri, redis_url, mongo, redis, embedded, lock, joined)
        stores.supervisors = [
            asyncio.create_task(
                supervise(server, first_delay=settings.embedded_restart_delay_seconds),
                name=f"supervise-embedded-{server.name}",
            )
            for server in embedded
        ]
        try:
            await init_beanie(database=stores.database, document_models=list(document_models))
        except BaseException:
            await stores.close()
            raise
        return stores

    async def close(self) -> None:
        for supervisor in self.supervisors:
            supervisor.cancel()
        await asyncio.gather(*self.supervisors, return_exceptions=True)
        self.supervisors.clear()
        await self.redis.aclose()
        await self.mongo.close()
        for server in reversed(self.embedded):
            await asyncio.to_thread(server.stop)
        self.embedded.clear()
        if self.lock is not None:
            (self.settings.data_dir / RUNTIME_FILE).unlink(missing_ok=True)
            self.lock.release()
            self.lock = None

    async def ping_mongodb(self) -> None:
        await asyncio.wait_for(self.mongo.admin.command("ping"), PING_TIMEOUT_SECONDS)

    async def ping_redis(self) -> None:
        await asyncio.wait_for(self.redis.ping(), PING_TIMEOUT_SECONDS)


def _durability(settings: Settings) -> dict[str, object]:
    """Client options for durable writes and reads: acknowledged by the configured majority and journaled, read
    only once a majority holds them, so a replica-set failover never rolls back what a user was shown."""
    write_concern = settings.mongodb_write_concern
    return {
        "w": int(write_concern) if write_concern.isdigit() else write_concern,
        "journal": True,
        "readConcernLevel": settings.mongodb_read_concern,
    }


def _start_embedded(settings: Settings, mongodb_uri: str | None, redis_url: str | None) -> list[ChildServer]:
    started: list[ChildServer] = []
    try:
        if mongodb_uri is None:
            started.append(EmbeddedMongo(settings.data_dir / "mongodb").start())
        if redis_url is None:
            started.append(EmbeddedRedis(settings.data_dir / "redis").start())
    except BaseException:
        for server in started:
            server.stop()
        raise
    return started


def _write_runtime_file(data_dir: Path, **urls: str) -> None:
    write_private(data_dir / RUNTIME_FILE, json.dumps({"pid": os.getpid(), **urls}))


def read_runtime_file(data_dir: Path) -> dict[str, str] | None:
    """The embedded servers' URLs of the medchat process running on ``data_dir``, if any."""
    try:
        return json.loads((data_dir / RUNTIME_FILE).read_text())
    except (OSError, ValueError):
        return None

"""Shared fixtures: real stores started once per session, an isolated database per test.

Set MEDCHAT_TEST_MONGODB_URI / MEDCHAT_TEST_REDIS_URL / MEDCHAT_TEST_QDRANT_URL to run the same tests
against real servers; otherwise the embedded servers medchat itself uses are started here.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis import Redis

from medchat.app import create_app
from medchat.auth import Accounts  # the service itself, to promote without a backdoor in the app
from medchat.platform.embedded import EmbeddedMongo, EmbeddedRedis
from medchat.platform.registry import registry_of
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.accounts import TEST_PASSWORD, RegisteredUser, RegisterUser
from tests.support.app import in_app_loop

REDIS_TEST_DATABASES = range(1, 16)


def _worker_redis_databases() -> list[int]:
    """The Redis databases this pytest process may use: all of them, or its share of a shared server.

    Each pytest-xdist worker starts its own Redis (``store_urls`` is per worker) unless MEDCHAT_TEST_REDIS_URL
    is set; then the workers share that server, and worker ``gwN`` of ``M`` takes every M-th database from
    N + 1, so no two workers ever use (and flush) the same database.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not os.environ.get("MEDCHAT_TEST_REDIS_URL") or not worker.startswith("gw") or workers <= 1:
        return list(REDIS_TEST_DATABASES)
    if workers > len(REDIS_TEST_DATABASES):
        raise pytest.UsageError(f"at most {len(REDIS_TEST_DATABASES)} xdist workers share one test Redis")
    return list(REDIS_TEST_DATABASES)[int(worker.removeprefix("gw")) :: workers]


_redis_database = itertools.cycle(_worker_redis_databases())


@pytest.fixture(scope="session")
def store_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | None]]:
    """URLs of the MongoDB and Redis servers the tests use, started here unless given."""
    root = tmp_path_factory.mktemp("stores")
    started = []
    mongodb_uri = os.environ.get("MEDCHAT_TEST_MONGODB_URI")
    redis_url = os.environ.get("MEDCHAT_TEST_REDIS_URL")
    if not mongodb_uri:
        started.append(EmbeddedMongo(root / "mongodb").start())
        mongodb_uri = started[-1].url
    if not redis_url:
        started.append(EmbeddedRedis(root / "redis").start())
        redis_url = started[-1].url
    yield {"mongodb_uri": mongodb_uri, "redis_url": redis_url, "qdrant_url": os.environ.get("MEDCHAT_TEST_QDRANT_URL")}
    for server in started:
        server.stop()


def _fresh_redis_database(redis_url: str) -> str:
    """A Redis URL on the next numbered database, emptied, so each test starts clean."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.rsplit("/", 1)[-1].isdigit() else redis_url.rstrip("/")
    url = f"{base}/{next(_redis_database)}"
    with Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture
def settings(store_urls: dict[str, str | None], tmp_path: Path) -> Settings:
    """Settings for one test: its own data dir, its own MongoDB database, an emptied Redis database."""
    assert store_urls["redis_url"] is not None
    return Settings.load(
        environment="test",
        data_dir=tmp_path / "data",
        mongodb_uri=store_urls["mongodb_uri"],
        mongodb_database=f"test_{uuid.uuid4().hex[:12]}",
        redis_url=_fresh_redis_database(store_urls["redis_url"]),
        qdrant_url=store_urls["qdrant_url"],
        qdrant_collection=f"test_{uuid.uuid4().hex[:12]}",
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        llm_api_key=None,
        # argon2id at its cheapest (~1 ms instead of ~50 ms); tests/auth checks the production parameters.
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        password_hash_parallelism=1,
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The stores and services opened in the test's own event loop, for service-level tests.

    (``client`` runs the app in a thread of its own, whose clients belong to that thread's loop.)
    """
    opened = await Runtime.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def register_user() -> RegisterUser:
    """``await register_user(client, email=None, role="user", ...)``: register through ``POST /api/v1/auth/register``.

    ``role="admin"`` promotes the new account through the auth service (as ``medchat user promote`` does);
    registration itself never grants admin.
    """

    async def register(
        client: AsyncTestClient[Litestar],
        *,
        email: str | None = None,
        password: str = TEST_PASSWORD,
        full_name: str = "Test User",
        role: str = "user",
    ) -> RegisteredUser:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
        response = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "full_name": full_name}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        if role == "admin":
            promote = (
                registry_of(client.app.state).get(Accounts).update_user(body["user"]["id"], role="admin", actor="test")
            )
            await in_app_loop(client, promote)
        return RegisteredUser(
            id=body["user"]["id"],
            email=email,
            password=password,
            full_name=full_name,
            role=role,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
        )

    return register


@pytest.fixture
def register_admin(register_user: RegisterUser) -> RegisterUser:
    """Like ``register_user`` with ``role="admin"``."""

    async def register(client: AsyncTestClient[Litestar], **kwargs: object) -> RegisteredUser:
        return await register_user(client, role="admin", **kwargs)

    return register

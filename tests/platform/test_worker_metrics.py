"""The standalone worker serves ``/metrics`` for Prometheus, with the queue depth it reads from Redis.

The worker runs as its own process against the test's real MongoDB and Redis (embedded Qdrant, as in
``test_worker_heartbeat``: the metrics do not care which vector store it has), with jobs deferred into
the queue before it starts, so the depth it reports can only come from its own reading of Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from arq.connections import create_pool
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from medchat.runtime import QUEUE_NAME, arq_redis_settings
from medchat.settings import Settings

pytestmark = pytest.mark.slow

DEFERRED_JOBS = 2
STARTUP_SECONDS = 90.0
WORKER = (
    "import asyncio\n"
    "from medchat.settings import Settings\n"
    "from medchat.worker import run_worker\n"
    "asyncio.run(run_worker(Settings.load()))\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def defer_jobs(redis_url: str, count: int) -> None:
    """Jobs due in an hour: they wait in the queue while the worker runs."""
    queue = await create_pool(arq_redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        for _ in range(count):
            await queue.enqueue_job("ping", _defer_by=3600)
    finally:
        await queue.aclose()


def scrape(url: str) -> list[Sample]:
    """The samples the worker's ``/metrics`` serves; none while it does not answer yet."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return []
    assert response.status_code == 200, response.text
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def queue_depth(samples: list[Sample]) -> float | None:
    return next((sample.value for sample in samples if sample.name == "medchat_queue_depth"), None)


@pytest.mark.parametrize("multiprocess", [False, True], ids=["single-process", "multiprocess-dir"])
def test_medchat_worker_serves_the_queue_depth_on_its_metrics_port(
    settings: Settings, tmp_path: Path, multiprocess: bool
) -> None:
    asyncio.run(defer_jobs(str(settings.redis_url), DEFERRED_JOBS))
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MEDCHAT_", "PROMETHEUS_"))}
    environment |= {
        "MEDCHAT_ENVIRONMENT": "test",
        "MEDCHAT_DATA_DIR": str(tmp_path / "data"),
        "MEDCHAT_MONGODB_URI": str(settings.mongodb_uri),
        "MEDCHAT_MONGODB_DATABASE": settings.mongodb_database,
        "MEDCHAT_REDIS_URL": str(settings.redis_url),
        "MEDCHAT_WORKER_HEARTBEAT_PATH": str(tmp_path / "worker.alive"),
        "MEDCHAT_HOST": "127.0.0.1",
        "MEDCHAT_WORKER_METRICS_PORT": str(port),
    }
    if multiprocess:
        (tmp_path / "metrics").mkdir()
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while queue_depth(samples := scrape(url)) != DEFERRED_JOBS:
            if process.poll() is not None:
                pytest.fail(f"the worker exited: {process.stdout.read() if process.stdout else ''}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker's /metrics showed no queue depth of {DEFERRED_JOBS} in {STARTUP_SECONDS} s")
            time.sleep(0.1)

        redis_calls = [
            sample
            for sample in samples
            if sample.name == "medchat_store_call_duration_seconds_count" and sample.labels.get("store") == "redis"
        ]
        assert redis_calls, "the worker's own store calls are there too"
        if multiprocess:
            assert list((tmp_path / "metrics").glob("*.db")), "values are written to the multiprocess directory"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

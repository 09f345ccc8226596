"""The standalone worker's heartbeat file and ``medchat worker --check``, the exec probe of its container."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from medchat.platform.embedded import EmbeddedRedis
from medchat.settings import Settings
from medchat.worker import beat_while_redis_answers

MEDCHAT = str(Path(sys.executable).parent / "medchat")


def check(path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MEDCHAT_WORKER_HEARTBEAT_PATH": str(path)}
    return subprocess.run(
        [MEDCHAT, "worker", "--check", *arguments], env=environment, capture_output=True, text=True, timeout=60
    )


def make_stale(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.05)


def test_check_fails_without_a_heartbeat(tmp_path: Path) -> None:
    result = check(tmp_path / "absent.alive")

    assert result.returncode == 1
    assert str(tmp_path / "absent.alive") in result.stderr


def test_check_passes_on_a_fresh_heartbeat_and_fails_on_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "worker.alive"
    path.touch()
    assert check(path).returncode == 0

    make_stale(path, 45)
    stale = check(path)
    assert stale.returncode == 1
    assert "stale" in stale.stderr
    assert check(path, "--max-age", "120").returncode == 0


def test_check_loads_neither_settings_nor_the_worker(tmp_path: Path) -> None:
    """The probe runs every few seconds: it must not import pydantic, the runtime or a store client."""
    path = tmp_path / "worker.alive"
    path.touch()
    script = (
        "import json, sys\n"
        "import medchat.cli\n"
        "try:\n"
        "    medchat.cli.main(['worker', '--check'])\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n"
    )
    environment = {**os.environ, "MEDCHAT_WORKER_HEARTBEAT_PATH": str(path)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["code"] in (0, None)
    heavy = ("pydantic", "pydantic_settings", "medchat.settings", "medchat.runtime", "medchat.worker", "redis", "arq")
    loaded = [name for name in report["modules"] if name.split(".")[0] in heavy or name in heavy]
    assert not loaded, f"the probe imports {loaded}"


async def test_the_heartbeat_stops_when_redis_stops_answering(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    path = tmp_path / "worker.alive"
    beating = asyncio.create_task(beat_while_redis_answers(path, client.ping, interval=0.05))
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline, "no heartbeat while Redis answers"
            await asyncio.sleep(0.05)
        assert check(path).returncode == 0

        server.stop()
        make_stale(path, 120)
        await asyncio.sleep(1)  # twenty beats' worth: none may land while Redis is gone

        assert time.time() - path.stat().st_mtime >= 119
        assert check(path).returncode == 1
        assert not beating.done(), "the heartbeat loop outlives a Redis outage, to beat again once it is back"
    finally:
        beating.cancel()
        await client.aclose()
        server.stop()


@pytest.mark.slow
def test_medchat_worker_beats_while_running_and_clears_the_file_when_stopped(
    settings: Settings, tmp_path: Path
) -> None:
    """The real worker process (embedded Qdrant here: the probe does not care which stores it runs on)."""
    path = tmp_path / "worker.alive"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEDCHAT_")}
    environment |= {
        "MEDCHAT_ENVIRONMENT": "test",
        "MEDCHAT_DATA_DIR": str(tmp_path / "data"),
        "MEDCHAT_MONGODB_URI": str(settings.mongodb_uri),
        "MEDCHAT_MONGODB_DATABASE": settings.mongodb_database,
        "MEDCHAT_REDIS_URL": str(settings.redis_url),
        "MEDCHAT_WORKER_HEARTBEAT_PATH": str(path),
        "MEDCHAT_WORKER_HEARTBEAT_SECONDS": "0.2",
    }
    script = (
        "import asyncio\n"
        "from medchat.settings import Settings\n"
        "from medchat.worker import run_worker\n"
        "asyncio.run(run_worker(Settings.load()))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: path.exists() or process.poll() is not None, 90, "the worker wrote no heartbeat")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert check(path).returncode == 0

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

        assert not path.exists(), "a stopped worker leaves no heartbeat behind"
        assert check(path).returncode == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

"""``medchat serve`` as an operator runs it: a real process tree on embedded stores."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from medchat.platform.stores import read_runtime_file
from tests.support.serve import MEDCHAT, ServeProcess, descendants, wait_gone

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_is_ready_keeps_data_and_leaves_no_process(tmp_path: Path, stop_signal: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        body = httpx.get(f"{server.base_url}/readyz").json()
        assert body["status"] == "ok"
        assert {name: body["checks"][name] for name in ("mongodb", "redis")} == {"mongodb": "ok", "redis": "ok"}
        tree = descendants(server.process.pid)
        assert len(tree) >= 3, "granian worker, nx-27017 and redis-server run below serve"
        urls = read_runtime_file(data_dir)
        with MongoClient(urls["mongodb_uri"]) as mongo:
            mongo.medchat.kept.insert_one({"note": "survives a restart"})
        assert server.stop(stop_signal) == 0
    assert wait_gone(tree) == set(), "a child process outlived medchat serve"
    assert read_runtime_file(data_dir) is None

    with ServeProcess(data_dir) as server:
        urls = read_runtime_file(data_dir)
        with MongoClient(urls["mongodb_uri"]) as mongo:
            assert mongo.medchat.kept.find_one({})["note"] == "survives a restart"


def test_children_die_when_serve_is_killed(tmp_path: Path) -> None:
    """SIGKILL on serve: its web worker notices and shuts down in order, stopping the store servers."""
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        tree = descendants(server.process.pid)
        assert len({pid for pid in tree if _is_store_server(pid)}) == 2
        server.stop(signal.SIGKILL)
    assert wait_gone(tree) == set()
    with ServeProcess(data_dir) as restarted:  # the data dir is free again
        assert httpx.get(f"{restarted.base_url}/readyz").status_code == 200


def test_store_servers_die_with_a_killed_web_worker(tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "data") as server:
        tree = descendants(server.process.pid)
        stores = {pid for pid in tree if _is_store_server(pid)}
        for pid in tree - stores:  # the process that started the store servers, killed like a crash would
            subprocess.run(["kill", "-9", str(pid)], check=False)
        assert wait_gone(stores) == set()


def _is_store_server(pid: int) -> bool:
    command = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    return "nx-27017" in command or "redis-server" in command


def test_a_second_serve_on_the_same_data_dir_refuses_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as first:
        second = subprocess.run(
            [MEDCHAT, "serve"],
            env={**first.environment(), "MEDCHAT_PORT": str(first.port + 1)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "another medchat process" in second.stderr
        assert httpx.get(f"{first.base_url}/readyz").status_code == 200


def test_more_workers_need_real_servers(tmp_path: Path) -> None:
    result = subprocess.run(
        [MEDCHAT, "serve", "--workers", "2"],
        env=ServeProcess(tmp_path / "data").environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--workers above 1 needs real servers" in result.stderr


def test_doctor_reports_embedded_stores_and_that_they_answer(tmp_path: Path) -> None:
    env = ServeProcess(tmp_path / "data").environment()
    result = subprocess.run([MEDCHAT, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "embedded nx-27017" in result.stdout
    assert "mongodb  answers" in result.stdout
    assert "redis    answers" in result.stdout

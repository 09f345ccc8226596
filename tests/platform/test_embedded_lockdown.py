"""The embedded stores answer medchat only: Redis wants its secret, nx-27017 has no TCP port at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis
from pymongo import MongoClient

from medchat.platform.embedded import EmbeddedMongo, EmbeddedRedis
from tests.support.serve import listening_tcp_ports


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_redis_refuses_a_local_client_without_the_secret(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert server.process is not None
        with (
            redis.Redis(host=server.host, port=server.port) as stranger,
            pytest.raises(redis.AuthenticationError, match=r"Authentication required"),  # NOAUTH
        ):
            stranger.set("medchat:auth:session:forged", '{"uid": "admin", "ver": 0}')
        with redis.Redis.from_url(server.url) as medchat:
            assert medchat.ping()
            assert medchat.get("medchat:auth:session:forged") is None
        secret = server.url.split("@", 1)[0].rsplit(":", 1)[1]
        assert len(secret) >= 32
        command_line = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert secret.encode() not in command_line, "any local user can read a process's command line"
        for kept in server.workdir.iterdir():
            if kept.is_file():
                assert mode(kept) == 0o600, kept
    finally:
        server.stop()


def test_the_secret_is_kept_so_a_restarted_redis_takes_the_same_url(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "redis").start()
    url = first.url
    first.stop()
    second = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert second.url.split("@", 1)[0] == url.split("@", 1)[0]
    finally:
        second.stop()


def test_mongodb_listens_only_on_a_unix_socket_in_a_private_folder(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "mongodb").start()
    try:
        assert server.process is not None
        assert listening_tcp_ports(server.process.pid) == set()
        socket_path = server.socket_path
        assert socket_path.is_socket()
        assert mode(socket_path.parent) == 0o700
        with MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
            client.lockdown.records.insert_one({"_id": "kept"})
            assert client.lockdown.records.find_one({"_id": "kept"}) == {"_id": "kept"}
    finally:
        server.stop()
    assert not socket_path.exists()


def test_a_data_dir_too_deep_for_a_socket_path_still_serves(tmp_path: Path) -> None:
    workdir = tmp_path / ("deep" * 15) / ("deeper" * 10) / "mongodb"
    assert len(str(workdir / "mongodb.sock")) > 107  # the limit of a Unix socket path
    server = EmbeddedMongo(workdir).start()
    try:
        assert len(str(server.socket_path)) <= 107
        assert mode(server.socket_path.parent) == 0o700
        with MongoClient(server.url, serverSelectionTimeoutMS=5000) as client:
            assert client.admin.command("ping")["ok"] == 1
    finally:
        server.stop()
    assert not server.socket_path.parent.exists(), "the private socket folder is removed with the server"

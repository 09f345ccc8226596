"""A real ``medchat serve`` whose embedded stores fail: requests answer 503, the stores come back, data stays.

Also the data dir of a running server: private to its owner, an old one tightened at start.
"""

from __future__ import annotations

import os
import signal
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from medchat.platform.stores import read_runtime_file
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess, child_pid, listening_tcp_ports, wait_gone

pytestmark = pytest.mark.slow

PASSWORD = "a long enough test password 42"
RESTART_DELAY_SECONDS = 4.0
"""The supervisor's first restart delay here: long enough to watch the outage, short enough to wait for."""
UNAVAILABLE = "dependency_unavailable"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm() as server:
        yield server


def serve(data_dir: Path, llm: FakeLLMServer) -> ServeProcess:
    return ServeProcess(
        data_dir,
        extra_env={
            "MEDCHAT_LLM_API_KEY": "test-key",
            "MEDCHAT_LLM_BASE_URL": llm.base_url,
            "MEDCHAT_LLM_MODEL": "fake/model",
            "MEDCHAT_EMBEDDED_RESTART_DELAY_SECONDS": str(RESTART_DELAY_SECONDS),
        },
    )


def register(http: httpx.Client) -> tuple[str, dict[str, str]]:
    email = f"fault-{uuid.uuid4().hex[:8]}@example.org"
    response = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return email, {"Authorization": f"Bearer {response.json()['access_token']}"}


def sign_in_browser(http: httpx.Client, email: str) -> None:
    http.get("/login")
    form = {"email": email, "password": PASSWORD, "_csrf_token": http.cookies["medchat_csrf"]}
    assert http.post("/login", data=form).status_code == 303
    assert http.cookies.get("medchat_session")


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == UNAVAILABLE


def ask(http: httpx.Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    return http.post("/api/v1/chat/messages", json={"content": "What is hypertension?", **body}, headers=headers)


def test_a_killed_redis_answers_503_meanwhile_then_comes_back_with_its_data(tmp_path: Path, llm: FakeLLMServer) -> None:
    with serve(tmp_path / "data", llm) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        email, headers = register(http)
        sign_in_browser(http, email)  # a session held in Redis only
        turn = ask(http, headers)
        assert turn.status_code == 201, turn.text
        conversation_id = turn.json()["conversation_id"]
        redis_pid = child_pid(server, "redis-server")

        os.kill(redis_pid, signal.SIGKILL)
        assert wait_gone({redis_pid}) == set()
        killed_at = time.monotonic()

        assert_unavailable(http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}))
        assert_unavailable(ask(http, headers, conversation_id=conversation_id))
        page = http.get("/chat/", headers={"Accept": "text/html"})
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert f'data-code="{UNAVAILABLE}"' in page.text
        readiness = http.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["redis"] != "ok"
        assert readiness.json()["checks"]["mongodb"] == "ok"
        assert time.monotonic() - killed_at < RESTART_DELAY_SECONDS, "the outage was not observed before the restart"

        server.wait_ready(timeout=60)
        assert child_pid(server, "redis-server") != redis_pid
        assert http.get("/chat/", headers={"Accept": "text/html"}).status_code == 200, "the session survived"
        assert http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
        assert ask(http, headers, conversation_id=conversation_id).status_code == 201
        messages = http.get(f"/api/v1/chat/conversations/{conversation_id}", headers=headers).json()["messages"]
        assert len(messages) == 4
        assert "embedded server restarted" in server.log()
        assert "locals" not in server.log()


def test_a_paused_mongodb_answers_503_within_the_timeouts_then_works_again(tmp_path: Path, llm: FakeLLMServer) -> None:
    with serve(tmp_path / "data", llm) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        _, headers = register(http)
        turn = ask(http, headers)
        assert turn.status_code == 201, turn.text
        conversation_id = turn.json()["conversation_id"]
        mongo_pid = child_pid(server, "nx_server")

        os.kill(mongo_pid, signal.SIGSTOP)
        waited = []
        try:
            for request in (
                lambda: http.get("/api/v1/chat/conversations", headers=headers),
                lambda: ask(http, headers, conversation_id=conversation_id),
            ):
                started = time.monotonic()
                assert_unavailable(request())
                waited.append(time.monotonic() - started)
        finally:
            os.kill(mongo_pid, signal.SIGCONT)
        # Each within twice the store timeout (4 s; a read is retried once), never held until the client gives up.
        assert max(waited) < 12, f"requests took {waited} s"

        server.wait_ready(timeout=60)
        assert ask(http, headers, conversation_id=conversation_id).status_code == 201
        messages = http.get(f"/api/v1/chat/conversations/{conversation_id}", headers=headers).json()["messages"]
        assert [message["role"] for message in messages][:2] == ["user", "assistant"]
        assert messages[0]["content"] == "What is hypertension?"


def test_the_data_dir_is_private_and_the_stores_refuse_strangers(tmp_path: Path, llm: FakeLLMServer) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "uploads").mkdir(parents=True, mode=0o755)
    old_upload = data_dir / "uploads" / "leaflet.pdf"
    old_upload.write_bytes(b"%PDF-1.4 from an older medchat")
    old_upload.chmod(0o644)
    data_dir.chmod(0o755)

    with serve(data_dir, llm) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        register(http)
        running = read_runtime_file(data_dir)
        assert running is not None
        redis_url = running["redis_url"]
        host, port = redis_url.rsplit("@", 1)[1].split("/", 1)[0].split(":")
        with redis.Redis(host=host, port=int(port)) as stranger, pytest.raises(redis.AuthenticationError):
            stranger.keys("medchat:auth:session:*")
        assert listening_tcp_ports(child_pid(server, "nx_server")) == set()

        loose = []
        for path in [data_dir, *data_dir.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600 if path.is_file() else None
            if expected is not None and stat.S_IMODE(path.stat().st_mode) != expected:
                loose.append(f"{oct(stat.S_IMODE(path.stat().st_mode))} {path.relative_to(data_dir)}")
        assert loose == []
        assert (data_dir / "run" / "stores.json").is_file()

"""A crash of the whole ``medchat serve`` (every process SIGKILLed, as an OOM kill of a pod does) in the
middle of an answer and of an ingestion, then a restart on the same data dir: within a minute no answer
is left ``streaming`` and the document's ingestion has resumed and finished.

Real processes throughout: ``medchat serve`` with its embedded stores, and the fake model over HTTP,
made slow so the answer is still streaming when the server dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.leaflets import protocol_leaflet
from tests.support.serve import ServeProcess, descendants, wait_gone

pytestmark = pytest.mark.slow

RECOVERY_LIMIT_SECONDS = 60.0
POLL_SECONDS = 0.25
WATCH_SECONDS = 0.05
"""How often the document is read while waiting for the moment it is being ingested (a few seconds long)."""
PARAGRAPHS = 24
"""About 30 passages: one embedding batch, a few seconds on 2 cores, so the server dies while it runs and the
restarted one finishes well within the limit even on a loaded machine."""


def serve_on(data_dir: Path, fake_llm: FakeLLMServer) -> ServeProcess:
    return ServeProcess(
        data_dir,
        extra_env={
            "MEDCHAT_LLM_API_KEY": "test-key",
            "MEDCHAT_LLM_BASE_URL": fake_llm.base_url,
            "MEDCHAT_LLM_MODEL": "fake/slow-model",
            "MEDCHAT_CHAT_FOLLOW_UP_QUERIES": "off",
        },
    )


def ask_and_hold(client: httpx.Client, first_token: threading.Event, outcome: dict[str, Any]) -> None:
    """Ask over SSE and keep reading until the server dies; ``first_token`` is set once text arrives."""
    try:
        with client.stream(
            "POST",
            "/api/v1/chat/messages",
            json={"content": "How often is blood pressure checked?"},
            headers={"Accept": "text/event-stream"},
            timeout=120,
        ) as response:
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "meta":
                    outcome["meta"] = httpx.Response(200, content=line[5:].strip()).json()
                elif line.startswith("data:") and event == "token":
                    first_token.set()
    except httpx.HTTPError:
        pass  # the server was killed mid-answer
    finally:
        first_token.set()


def kill_everything(server: ServeProcess) -> None:
    assert server.process is not None
    tree = {server.process.pid, *descendants(server.process.pid)}
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait()
    assert wait_gone(tree) == set()


def test_a_killed_server_leaves_no_answer_streaming_and_resumes_the_ingestion(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_fake_llm(reply=" ".join(["Readings"] * 400) + " [1].", token_delay=0.1) as fake_llm:
        server = serve_on(data_dir, fake_llm).start()
        try:
            server.wait_ready()
            client = httpx.Client(base_url=server.base_url, timeout=30)
            registered = client.post(
                "/api/v1/auth/register",
                json={"email": "nurse@example.org", "password": PASSWORD, "full_name": "Nurse"},
            )
            assert registered.status_code == 201, registered.text
            client.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"

            first_token, outcome = threading.Event(), dict[str, Any]()
            asking = threading.Thread(target=ask_and_hold, args=(client, first_token, outcome), daemon=True)
            asking.start()
            assert first_token.wait(60) and "meta" in outcome, "the answer started streaming"
            conversation_id = outcome["meta"]["conversation_id"]
            answer_id = outcome["meta"]["message"]["id"]

            upload = client.post(
                "/api/v1/documents/",
                files={"file": ("leaflet.txt", protocol_leaflet(PARAGRAPHS), "text/plain")},
                data={"scope": "private"},
            )
            assert upload.status_code == 202, upload.text
            document_id = upload.json()["id"]
            document = wait_for(
                lambda: client.get(f"/api/v1/documents/{document_id}").json(),
                lambda found: found["status"] != "queued",
                timeout=60,
                every=WATCH_SECONDS,
            )
            assert document["status"] == "processing", f"the server dies mid-ingestion: {document}"
            assert answer_of(client, conversation_id, answer_id)["status"] == "streaming", "and mid-answer"
            kill_everything(server)
        finally:
            if server.process is not None and server.process.poll() is None:
                kill_everything(server)
        asking.join(timeout=10)

        restarted = serve_on(data_dir, fake_llm)
        with restarted:
            restarted_at = time.monotonic()
            client.base_url = httpx.URL(restarted.base_url)
            answer = wait_for(
                lambda: answer_of(client, conversation_id, answer_id),
                lambda found: found["status"] != "streaming",
                timeout=RECOVERY_LIMIT_SECONDS,
            )
            answer_recovered_in = time.monotonic() - restarted_at
            document = wait_for(
                lambda: client.get(f"/api/v1/documents/{document_id}").json(),
                lambda found: found["status"] in ("ready", "failed"),
                timeout=RECOVERY_LIMIT_SECONDS - (time.monotonic() - restarted_at),
            )
            document_recovered_in = time.monotonic() - restarted_at
            print(
                f"after the restart was ready: no answer streaming in {answer_recovered_in:.1f} s, "
                f"document ready in {document_recovered_in:.1f} s"
            )
            question = next(
                message
                for message in client.get(f"/api/v1/chat/conversations/{conversation_id}").json()["messages"]
                if message["id"] == answer["parent_id"]
            )
            assert question["role"] == "user" and question["content"] == "How often is blood pressure checked?"
            assert answer["status"] == "failed" and answer["error"]["reason"] == "orphaned", answer
            assert document["status"] == "ready" and document["chunks"] > 0, document
            assert f"document_id={document_id}" in requeue_lines(restarted), (
                "the restarted server queued the interrupted ingestion again"
            )


def answer_of(client: httpx.Client, conversation_id: str, answer_id: str) -> dict[str, Any]:
    messages = client.get(f"/api/v1/chat/conversations/{conversation_id}").json()["messages"]
    return next(message for message in messages if message["id"] == answer_id)


def requeue_lines(server: ServeProcess) -> str:
    return "\n".join(line for line in server.log().splitlines() if "orphaned ingestion queued again" in line)


def wait_for(read: Any, done: Any, *, timeout: float, every: float = POLL_SECONDS) -> Any:
    """A bounded poll: ``read()`` until ``done(value)``, else fail with the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {value}")
        time.sleep(every)
        value = read()
    return value

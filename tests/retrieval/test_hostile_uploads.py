"""Hostile uploads against a real ``medchat serve``: each is refused or fails with a reason, and the server's
process tree (the server and its children: stores, parse workers) stays within 150 MB of its idle RSS."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.files import word_document
from tests.support.hostile_files import MB, billion_laughs_docx, multipart_body, zip_bomb_docx
from tests.support.serve import ServeProcess, descendants

RSS_GROWTH_LIMIT_MB = 150
INGESTION_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1

pytestmark = pytest.mark.slow


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process below it, in MB."""
    total_kb = 0
    for member in {pid, *descendants(pid)}:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


@dataclass
class PeakRss:
    """Samples the tree's RSS in a thread (every 20 ms) while the block runs; ``peak`` is the highest seen."""

    pid: int
    peak: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    process: ServeProcess
    headers: dict[str, str]

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def upload(self, data: bytes, filename: str) -> dict:
        response = httpx.post(
            f"{self.process.base_url}/api/v1/documents/",
            files={"file": (filename, data, "application/octet-stream")},
            data={"scope": "private"},
            headers=self.headers,
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def wait_final(self, document_id: str, rss: PeakRss | None = None, idle: float = 0.0) -> dict:
        """The document once ``ready`` or ``failed`` (a bounded poll, as the UI does); stops early when the
        server's memory has already passed the limit, so a runaway parse is not left to grow."""
        deadline = time.monotonic() + INGESTION_TIMEOUT_SECONDS
        while True:
            document = httpx.get(
                f"{self.process.base_url}/api/v1/documents/{document_id}", headers=self.headers, timeout=30
            ).json()
            if document["status"] in ("ready", "failed"):
                return document
            if rss is not None:
                assert rss.peak - idle < RSS_GROWTH_LIMIT_MB, f"RSS went from {idle:.0f} MB to {rss.peak:.0f} MB"
            assert time.monotonic() < deadline, f"still {document['status']} after {INGESTION_TIMEOUT_SECONDS} s"
            time.sleep(POLL_SECONDS)

    def idle_rss(self) -> float:
        return tree_rss_mb(self.pid)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("hostile")
    with ServeProcess(root / "data", extra_env={"MEDCHAT_MAX_UPLOAD_MB": "50"}) as process:
        registered = httpx.post(
            f"{process.base_url}/api/v1/auth/register",
            json={"email": f"uploader-{uuid.uuid4().hex[:8]}@example.org", "password": "a sensible passphrase 9"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        running = Server(process, {"Authorization": f"Bearer {registered.json()['access_token']}"})
        # A real document first, so the idle figure includes the parse worker a server keeps after its first DOCX.
        warm = running.wait_final(running.upload(word_document(), "hypertension.docx")["id"])
        assert warm["status"] == "ready", warm["error"]
        yield running


def report(name: str, idle: float, peak: float) -> None:
    print(f"\n{name}: serve tree RSS idle {idle:.0f} MB, peak {peak:.0f} MB (+{peak - idle:.0f} MB)")


def test_a_zip_bomb_docx_fails_with_a_reason_without_inflating(server: Server) -> None:
    bomb = zip_bomb_docx(inflated_mb=320)
    assert len(bomb) < 2 * MB
    idle = server.idle_rss()
    with PeakRss(server.pid) as rss:
        document = server.wait_final(server.upload(bomb, "bomb.docx")["id"], rss, idle)
    report("zip bomb DOCX", idle, rss.peak)
    assert document["status"] == "failed"
    assert "expand" in document["error"], document["error"]
    assert rss.peak - idle < RSS_GROWTH_LIMIT_MB


def test_a_billion_laughs_docx_fails_with_a_reason(server: Server) -> None:
    idle = server.idle_rss()
    with PeakRss(server.pid) as rss:
        document = server.wait_final(server.upload(billion_laughs_docx(), "laughs.docx")["id"], rss, idle)
    report("billion-laughs DOCX", idle, rss.peak)
    assert document["status"] == "failed"
    assert document["error"] and "could not be read" in document["error"], document["error"]
    assert rss.peak - idle < RSS_GROWTH_LIMIT_MB


def test_a_400_mb_streamed_upload_is_refused_while_it_streams(server: Server) -> None:
    boundary = uuid.uuid4().hex
    idle = server.idle_rss()
    with PeakRss(server.pid) as rss:
        response = httpx.post(
            f"{server.process.base_url}/api/v1/documents/",
            content=multipart_body(boundary, filename="huge.txt", size=400 * MB),
            headers={**server.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )
    report("400 MB streamed upload", idle, rss.peak)
    assert response.status_code == 413, response.text[:300]
    assert response.json()["code"] == "payload_too_large"
    assert rss.peak - idle < RSS_GROWTH_LIMIT_MB


def test_an_announced_400_mb_upload_is_refused_before_its_body_is_read(server: Server) -> None:
    """Only the headers are sent: the answer must come from ``Content-Length`` alone."""
    boundary = uuid.uuid4().hex
    token = server.headers["Authorization"]
    head = (
        "POST /api/v1/documents/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.process.port}\r\n"
        f"Authorization: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {400 * MB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.process.port), timeout=20) as connection:
        connection.sendall(head + next(multipart_body(boundary, filename="huge.txt", size=400 * MB)))
        answer = connection.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "payload_too_large" in answer

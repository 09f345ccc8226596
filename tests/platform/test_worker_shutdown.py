"""SIGTERM to ``medchat worker`` in the middle of an ingestion: with a grace period the job finishes and the
worker exits 0; with none the job is cancelled back onto the queue and a second worker runs it again.

Real processes and stores: the worker runs on the test's MongoDB and Redis (and its Qdrant: embedded Edge in
the worker's data dir when the suite has no Qdrant server, as in ``test_worker_metrics``); the document is
uploaded through ``DocumentService`` in the test, whose runtime is closed before the worker starts so that
an embedded Qdrant is the worker's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import create_pool
from arq.jobs import Job, JobResult
from bson import ObjectId
from pymongo import MongoClient

from medchat.platform.identity import Principal
from medchat.retrieval import DocumentService
from medchat.runtime import QUEUE_NAME, Runtime, arq_redis_settings
from medchat.settings import Settings
from tests.support.leaflets import protocol_leaflet

pytestmark = pytest.mark.slow

WAIT_SECONDS = 120.0
POLL_SECONDS = 0.05
PARAGRAPHS = 8
"""A handful of passages: the signal lands between the claim and the end of embedding (the worker loads its
embedding model within the job), yet the test stays short."""
WORKER = (
    "import asyncio\n"
    "from medchat.settings import Settings\n"
    "from medchat.worker import run_worker\n"
    "asyncio.run(run_worker(Settings.load()))\n"
)
OWNER = Principal(id=str(ObjectId()), email="nurse@example.org", full_name="Nurse", role="user")


async def upload_leaflet(settings: Settings) -> str:
    """Store a document and queue its ingestion, as an upload does; returns the document's id."""
    runtime = await Runtime.open(settings)
    try:
        view = await runtime.services.get(DocumentService).upload(
            owner=OWNER, filename="leaflet.txt", data=protocol_leaflet(PARAGRAPHS), scope="private"
        )
    finally:
        await runtime.close()
    return view.id


async def job_state(redis_url: str, job_id: str) -> tuple[bool, JobResult | None]:
    """Whether the job waits in the queue, and its result once it has one."""
    queue = await create_pool(arq_redis_settings(redis_url), default_queue_name=QUEUE_NAME)
    try:
        queued = await queue.zscore(QUEUE_NAME, job_id) is not None
        return queued, await Job(job_id, queue, _queue_name=QUEUE_NAME).result_info()
    finally:
        await queue.aclose()


class Documents:
    """The ``documents`` collection of the test's database, read as the worker leaves it."""

    def __init__(self, settings: Settings) -> None:
        self._client: MongoClient = MongoClient(str(settings.mongodb_uri))
        self._collection = self._client[settings.mongodb_database]["documents"]

    def get(self, document_id: str) -> dict:
        document = self._collection.find_one({"_id": ObjectId(document_id)})
        assert document is not None
        return document

    def wait_for_status(self, document_id: str, status: str, worker: subprocess.Popen[str]) -> dict:
        deadline = time.monotonic() + WAIT_SECONDS
        while (document := self.get(document_id))["status"] != status:
            if worker.poll() is not None:
                pytest.fail(f"the worker exited ({worker.returncode}): {output_of(worker)}")
            if document["status"] == "failed" or time.monotonic() > deadline:
                pytest.fail(f"document {document['status']} ({document.get('error')}), never {status}")
            time.sleep(POLL_SECONDS)
        return document

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def documents(settings: Settings):
    opened = Documents(settings)
    yield opened
    opened.close()


def start_worker(settings: Settings, data_dir: Path, *, grace_seconds: int) -> subprocess.Popen[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MEDCHAT_", "PROMETHEUS_"))}
    environment |= {
        "MEDCHAT_ENVIRONMENT": "test",
        "MEDCHAT_DATA_DIR": str(data_dir),
        "MEDCHAT_MONGODB_URI": str(settings.mongodb_uri),
        "MEDCHAT_MONGODB_DATABASE": settings.mongodb_database,
        "MEDCHAT_REDIS_URL": str(settings.redis_url),
        "MEDCHAT_SECRET_KEY": str(settings.secret_key),
        "MEDCHAT_WORKER_HEARTBEAT_PATH": str(data_dir / "worker.alive"),
        "MEDCHAT_WORKER_SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
    }
    if settings.qdrant_url:
        environment |= {
            "MEDCHAT_QDRANT_URL": str(settings.qdrant_url),
            "MEDCHAT_QDRANT_COLLECTION": settings.qdrant_collection,
        }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def output_of(worker: subprocess.Popen[str]) -> str:
    return worker.stdout.read() if worker.stdout else ""


def terminate_and_wait(worker: subprocess.Popen[str]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=WAIT_SECONDS)


@contextlib.contextmanager
def running_worker(settings: Settings, *, grace_seconds: int) -> Iterator[subprocess.Popen[str]]:
    """A ``medchat worker`` process, killed on the way out if the test left it running."""
    worker = start_worker(settings, settings.data_dir, grace_seconds=grace_seconds)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def stop_once(documents: Documents, document_id: str, status: str, worker: subprocess.Popen[str]) -> dict[str, Any]:
    """The document once it has ``status``; then the worker is sent SIGTERM and must exit 0."""
    document = documents.wait_for_status(document_id, status, worker)
    assert terminate_and_wait(worker) == 0, output_of(worker)
    return document


def test_sigterm_lets_the_running_ingestion_finish_then_exits_0(settings: Settings, documents: Documents) -> None:
    document_id = asyncio.run(upload_leaflet(settings))
    with running_worker(settings, grace_seconds=300) as worker:
        running = stop_once(documents, document_id, "processing", worker)

    document = documents.get(document_id)
    assert document["status"] == "ready", document.get("error")
    assert document["chunks"] > 0
    queued, result = asyncio.run(job_state(str(settings.redis_url), running["job_id"]))
    assert result is not None, "the job finished in the stopping worker"
    assert result.success
    assert result.job_try == 1, "it was never cancelled nor run again"
    assert not queued


def test_without_grace_the_running_ingestion_goes_back_on_the_queue_for_the_next_worker(
    settings: Settings, documents: Documents
) -> None:
    document_id = asyncio.run(upload_leaflet(settings))
    with running_worker(settings, grace_seconds=0) as worker:
        running = stop_once(documents, document_id, "processing", worker)

    assert documents.get(document_id)["status"] == "processing", "cancelled mid-way, not finished"
    queued, result = asyncio.run(job_state(str(settings.redis_url), running["job_id"]))
    assert queued, "the cancelled job is back on the queue"
    assert result is None

    with running_worker(settings, grace_seconds=300) as successor:
        document = stop_once(documents, document_id, "ready", successor)

    assert document["chunks"] > 0
    queued, result = asyncio.run(job_state(str(settings.redis_url), running["job_id"]))
    assert result is not None
    assert result.success
    assert result.job_try == 2, "the same job, run again"
    assert not queued

"""The orphan sweep against the real test Redis and MongoDB: work is repaired only when its owner is gone.

Answers and ingestion jobs carry the id of the instance running them; an instance is alive while its
``medchat:instance:<id>`` key (refreshed every few seconds, short TTL) exists. Work stored before owners
were recorded keeps a time rule that uses the configured limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from beanie import PydanticObjectId

from medchat.chat.models import Message
from medchat.platform.clock import utcnow
from medchat.platform.instances import InstanceHeartbeat, repeat_every
from medchat.retrieval.models import SourceDocument
from medchat.runtime import QUEUE_NAME, Runtime
from medchat.settings import Settings


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    opened = await Runtime.open(settings.model_copy(update={"chat_stale_streaming_minutes": 1.0}))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def other_instance(runtime: Runtime) -> AsyncIterator[InstanceHeartbeat]:
    """Another live process on the same stores (its key is fresh; it does not beat on its own here)."""
    other = InstanceHeartbeat(runtime.stores.redis, ttl_seconds=15, interval_seconds=5, instance_id="other-pod")
    await other.beat()
    yield other
    await other.stop()


async def streaming_answer(*, writer: str | None, age: timedelta) -> Message:
    answer = Message(
        conversation_id=str(PydanticObjectId()),
        owner_id="someone",
        role="assistant",
        status="streaming",
        created_at=utcnow() - age,
        writer_instance=writer,
    )
    await answer.insert()
    return answer


async def status_of(answer: Message) -> str:
    stored = await Message.get(answer.id)
    assert stored is not None
    return stored.status


async def test_a_live_answer_of_another_instance_is_left_alone_however_old(
    runtime: Runtime, other_instance: InstanceHeartbeat
) -> None:
    answer = await streaming_answer(writer=other_instance.id, age=timedelta(hours=1))

    await runtime.sweep_orphans()

    assert await status_of(answer) == "streaming"


async def test_an_answer_fails_as_soon_as_its_writers_heartbeat_lapses(
    runtime: Runtime, other_instance: InstanceHeartbeat
) -> None:
    answer = await streaming_answer(writer=other_instance.id, age=timedelta(seconds=1))
    await other_instance.stop()  # the key is gone, as it is once the TTL passes after a crash

    await runtime.sweep_orphans()

    stored = await Message.get(answer.id)
    assert stored is not None and stored.status == "failed"
    assert stored.error is not None and (stored.error.code, stored.error.reason) == ("interrupted", "orphaned")


async def test_this_processs_own_answers_are_never_swept(runtime: Runtime) -> None:
    assert runtime.instance is not None
    answer = await streaming_answer(writer=runtime.instance.id, age=timedelta(hours=1))

    await runtime.sweep_orphans()

    assert await status_of(answer) == "streaming"


async def test_answers_without_a_writer_keep_a_time_rule_that_uses_the_setting(runtime: Runtime) -> None:
    """``chat_stale_streaming_minutes`` is 1 here: an answer of 2 minutes is stale, one just begun is not."""
    stale = await streaming_answer(writer=None, age=timedelta(minutes=2))
    recent = await streaming_answer(writer=None, age=timedelta(seconds=5))

    await runtime.sweep_orphans()

    assert await status_of(stale) == "failed"
    assert await status_of(recent) == "streaming"


async def processing_document(*, instance: str | None, job_id: str | None, attempts: int = 1) -> SourceDocument:
    document = SourceDocument(
        owner_id="someone",
        scope="private",
        title="Protocol",
        filename="protocol.txt",
        media_type="text/plain",
        size_bytes=10,
        sha256="0" * 64,
        storage_key="missing",
        status="processing",
        stage="embedding",
        progress=0.5,
        attempts=attempts,
        job_id=job_id,
        ingesting_instance=instance,
    )
    await document.insert()
    return document


async def stored(document: SourceDocument) -> SourceDocument:
    found = await SourceDocument.get(document.id)
    assert found is not None
    return found


async def test_an_ingestion_of_a_dead_instance_is_queued_again_under_a_new_job(runtime: Runtime) -> None:
    dead = await processing_document(instance="crashed-pod", job_id="ingest:old:1")

    await runtime.knowledge_base.documents.requeue_orphaned()  # type: ignore[union-attr]

    requeued = await stored(dead)
    assert requeued.status == "queued" and requeued.ingesting_instance is None
    assert requeued.job_id not in (None, "ingest:old:1")
    assert await runtime.job_queue.zscore(QUEUE_NAME, requeued.job_id) is not None, "the new job is queued"


async def test_an_ingestion_of_a_live_instance_is_left_alone(
    runtime: Runtime, other_instance: InstanceHeartbeat
) -> None:
    live = await processing_document(instance=other_instance.id, job_id="ingest:live:1")

    await runtime.sweep_orphans()

    assert (await stored(live)).status == "processing"
    assert await runtime.job_queue.zcard(QUEUE_NAME) == 0


async def test_a_document_that_died_with_its_process_again_and_again_fails(runtime: Runtime) -> None:
    poison = await processing_document(instance="crashed-pod", job_id="ingest:old:1", attempts=3)

    await runtime.sweep_orphans()

    failed = await stored(poison)
    assert failed.status == "failed" and failed.error


async def test_a_superseded_job_does_nothing(runtime: Runtime) -> None:
    """The dead process's own job may still run later (arq keeps it until its in-progress key expires):
    it must not ingest the document beside the job that replaced it."""
    document = await processing_document(instance="crashed-pod", job_id="ingest:old:1")
    await runtime.sweep_orphans()
    requeued = await stored(document)

    await runtime.knowledge_base.documents.ingest(str(document.id), job_id="ingest:old:1")  # type: ignore[union-attr]

    after = await stored(document)
    assert (after.status, after.job_id, after.attempts) == ("queued", requeued.job_id, requeued.attempts)


async def test_documents_without_an_owner_keep_a_time_rule(runtime: Runtime) -> None:
    old = await processing_document(instance=None, job_id=None)
    long_ago = utcnow() - timedelta(minutes=runtime.settings.ingest_stale_minutes + 1)
    await SourceDocument.get_pymongo_collection().update_one({"_id": old.id}, {"$set": {"updated_at": long_ago}})
    recent = await processing_document(instance=None, job_id=None)

    await runtime.sweep_orphans()

    assert (await stored(old)).status == "queued"
    assert (await stored(recent)).status == "processing"


async def test_periodic_work_stops_when_its_work_swallows_the_cancellation() -> None:
    """A store call that eats ``CancelledError`` must not keep the sweep (and so shutdown) running for ever."""
    started = asyncio.Event()
    swallowed: list[bool] = []

    async def swallowing_work() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(True)  # what a client library may do with a cancellation mid-call

    task = asyncio.create_task(repeat_every(0.01, swallowing_work, name="test"))
    await started.wait()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled(), "the periodic work kept running after it was cancelled"

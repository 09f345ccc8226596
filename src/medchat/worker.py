"""The arq worker: background jobs of every module, run by ``medchat worker`` or inside ``medchat serve``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog
from arq.cron import cron
from arq.worker import Worker
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

from medchat import heartbeat, retrieval
from medchat.logs import configure_process_logging
from medchat.platform import audit
from medchat.platform.instances import repeat_every
from medchat.platform.metrics_dir import MULTIPROC_VARIABLE, mark_this_process_dead
from medchat.platform.telemetry import configure_tracing
from medchat.runtime import QUEUE_NAME, Runtime, arq_redis_settings
from medchat.settings import Settings

log = structlog.get_logger(__name__)


async def ping(ctx: dict[str, Any]) -> float:
    """A job that proves the queue round trip works (nothing in medchat enqueues it yet)."""
    return time.time()


async def purge_audit_log(ctx: dict[str, Any]) -> int:
    """Daily: drop audit events past the retention period."""
    runtime: Runtime = ctx["runtime"]
    return await audit.purge_older_than(runtime.settings.audit_retention_days)


FUNCTIONS: list[Any] = [ping, purge_audit_log, *retrieval.JOB_FUNCTIONS]
CRON_JOBS = [cron(purge_audit_log, hour={3}, minute={17}, run_at_startup=False)]


def build_worker(
    runtime: Runtime, *, handle_signals: bool, burst: bool = False, shutdown_grace_seconds: int = 0
) -> Worker:
    """A worker whose jobs get ``ctx["runtime"]``: the same services the web app uses (``burst``: it stops
    once the queue is empty).

    With ``handle_signals``, SIGTERM or SIGINT stops it taking jobs, lets the running ones finish for up to
    ``shutdown_grace_seconds`` and then cancels the rest; arq puts a cancelled job back on the queue (its
    try counted, ``max_tries`` still applies) so another worker runs it again. 0 cancels at once.
    """
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        queue_name=QUEUE_NAME,
        redis_settings=arq_redis_settings(runtime.stores.redis_url),
        ctx={"runtime": runtime},
        handle_signals=handle_signals,
        job_completion_wait=shutdown_grace_seconds,
        max_jobs=4,
        job_timeout=30 * 60,
        max_tries=3,
        keep_result=3600,
        burst=burst,
    )


async def run_worker(settings: Settings) -> None:
    """The standalone worker process (``medchat worker``); needs real, shared stores."""
    configure_process_logging(settings)
    configure_tracing()
    metrics = serve_metrics(settings.host, settings.worker_metrics_port)
    runtime = await Runtime.open(settings)
    worker = build_worker(runtime, handle_signals=True, shutdown_grace_seconds=settings.worker_shutdown_grace_seconds)
    beating = asyncio.create_task(
        beat_while_redis_answers(
            settings.worker_heartbeat_path, runtime.stores.ping_redis, interval=settings.worker_heartbeat_seconds
        )
    )
    sweeping = asyncio.create_task(
        repeat_every(settings.orphan_sweep_seconds, runtime.sweep_orphans, name="orphan sweep")
    )
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        log.info("worker stopped", complete=worker.jobs_complete, retried_or_requeued=worker.jobs_retried)
    finally:
        # The heartbeat goes on through the grace period (the pod is alive while jobs finish) and stops here.
        await stop_tasks(sweeping, beating)
        heartbeat.clear(settings.worker_heartbeat_path)
        await worker.close()
        await runtime.close()
        if metrics is not None:
            metrics.shutdown()
        mark_this_process_dead()


async def stop_tasks(*tasks: asyncio.Task[Any]) -> None:
    """Cancel background loops and wait until they have ended, so none is cut off mid-write at exit."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def serve_metrics(host: str, port: int) -> MetricsServer | None:
    """Serve ``/metrics`` for Prometheus on ``port`` from a thread (0: not at all).

    The web process serves its metrics itself; this is the standalone worker's. With
    ``PROMETHEUS_MULTIPROC_DIR`` set (the worker's pod sets it), the files of every process there are
    summed, as the web ``/metrics`` does, so the worker's parse processes are included.
    """
    if not port:
        return None
    registry = REGISTRY
    if os.environ.get(MULTIPROC_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    server, thread = start_http_server(port, addr=host or "0.0.0.0", registry=registry)  # noqa: S104 - a pod's port
    log.info("worker metrics served", port=port)
    return MetricsServer(server, thread)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


async def beat_while_redis_answers(path: Path, ping_redis: Callable[[], Awaitable[object]], *, interval: float) -> None:
    """Touch the heartbeat file of ``medchat worker --check`` every ``interval`` seconds while Redis answers."""
    while True:
        try:
            await ping_redis()
        except Exception as error:  # noqa: BLE001 - a silent heartbeat is the report; the probe acts on it
            log.warning("worker heartbeat withheld: redis does not answer", error=str(error))
        else:
            heartbeat.beat(path)
        await asyncio.sleep(interval)


async def supervise_embedded_worker(runtime: Runtime, *, restart_delay: float = 2.0) -> None:
    """Run the in-process worker of ``medchat serve`` until cancelled, restarting it if Redis drops it."""
    while True:
        worker = build_worker(runtime, handle_signals=False)
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a lost Redis must not take the web app down with it
            log.warning("embedded worker stopped; restarting", error=str(error), restart_in=restart_delay)
        finally:
            with contextlib.suppress(Exception):
                await worker.close()
        await asyncio.sleep(restart_delay)

"""CPU-heavy work (parsing, OCR, speech) in long-lived child processes that a runaway input cannot escape.

Each of ``concurrency`` slots owns one worker process, started with ``spawn`` (the server holds
onnxruntime's threads, which a plain fork would copy half-alive) on first use and reused after. In the
worker, ``RLIMIT_AS`` caps memory (an allocation past it is a ``MemoryError``) and ``RLIMIT_CPU`` caps
each task's CPU time (past it the kernel stops the worker); the parent stops a worker that overruns the
wall-clock timeout. A stopped worker is replaced on the slot's next use, and the work fails with
``UnreadableDocument`` naming the limit, so a document ends ``failed`` with a reason.

Callers take a free slot first: background ingestion waits for one; a request waits ``wait_seconds`` and
is then refused with ``Busy`` (503 ``busy``), so at most ``concurrency`` heavy tasks run per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import multiprocessing
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from medchat.platform.errors import AppError, Busy
from medchat.retrieval.errors import UnreadableDocument

T = TypeVar("T")
MB = 1024 * 1024
_M_ARENA_MAX = -8
"""glibc's ``mallopt`` option: fewer malloc arenas, each of which reserves address space per thread."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    memory_bytes: int
    cpu_seconds: int
    timeout_seconds: float


def _limit_worker(memory_bytes: int) -> None:
    """The worker's initializer: its address space may not grow past ``memory_bytes``."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _run_limited(cpu_seconds: int, memory_bytes: int, function: Callable[..., T], *args: Any) -> T:
    """In the worker: run ``function`` with ``cpu_seconds`` more CPU time than the worker has used so far.

    Every failure crosses back as an ``AppError`` (a parser's own exceptions may not survive pickling).
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    try:
        return function(*args)
    except AppError:
        raise
    except MemoryError:
        raise UnreadableDocument(
            f"reading it needs more than the {memory_bytes // MB} MB of memory a document may use"
        ) from None
    except Exception as error:  # noqa: BLE001 - any parser failure is this document's failure, with its reason
        raise UnreadableDocument(f"the file could not be read ({type(error).__name__}: {error})") from None


class _Slot:
    """One worker process, started on first use and replaced after it was stopped."""

    def __init__(self, limits: WorkerLimits) -> None:
        self._limits = limits
        self._executor: ProcessPoolExecutor | None = None

    def _running_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_worker,
                initargs=(self._limits.memory_bytes,),
            )
        return self._executor

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        limits = self._limits
        future = self._running_executor().submit(_run_limited, limits.cpu_seconds, limits.memory_bytes, function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_seconds)
        except TimeoutError:
            self.stop()
            raise UnreadableDocument(f"reading it took longer than {limits.timeout_seconds:.0f} s") from None
        except BrokenProcessPool:
            self.stop()
            raise UnreadableDocument(
                f"reading it needed more than the {limits.cpu_seconds} s of processing time or "
                f"{limits.memory_bytes // MB} MB of memory a document may use"
            ) from None
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):  # the caller gave up: the worker must not go on
                self.stop()
            raise

    def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The executor cannot stop a running task; its process is killed (the pool is not reused after).
        for process in list(getattr(executor, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError, AttributeError):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)


class HeavyWork:
    """At most ``concurrency`` CPU-heavy tasks at once in this process, each in a limited worker process."""

    def __init__(self, *, concurrency: int, limits: WorkerLimits, wait_seconds: float) -> None:
        self._slots = [_Slot(limits) for _ in range(concurrency)]
        self._free: asyncio.LifoQueue[_Slot] | None = None
        self.wait_seconds = wait_seconds

    def _queue(self) -> asyncio.LifoQueue[_Slot]:
        """Free slots, the last used first: its worker is warm, and a second one starts only when two run at once."""
        if self._free is None:
            self._free = asyncio.LifoQueue()
            for slot in self._slots:
                self._free.put_nowait(slot)
        return self._free

    async def run(self, function: Callable[..., T], *args: Any, wait: bool = True) -> T:
        """``function(*args)`` in a worker; with ``wait=False`` wait at most ``wait_seconds`` for one (``Busy``)."""
        free = self._queue()
        if wait:
            slot = await free.get()
        elif not free.empty():
            slot = free.get_nowait()
        else:
            try:
                slot = await asyncio.wait_for(free.get(), self.wait_seconds)
            except TimeoutError:
                raise Busy(
                    "Every worker for reading images and recordings is busy; try again in a few seconds.",
                    retry_after=max(1, math.ceil(self.wait_seconds)),
                ) from None
        try:
            return await slot.run(function, *args)
        finally:
            free.put_nowait(slot)

    def close(self) -> None:
        """Stop every worker (what they were doing is abandoned)."""
        for slot in self._slots:
            slot.stop()
        log.debug("parse workers stopped")

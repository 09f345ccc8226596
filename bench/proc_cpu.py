"""CPU time and resident memory of process trees, read from /proc (Linux), for the benchmarks.

CPU is utime+stime plus that of reaped children (clock ticks), per process, so a level's cost is the
difference of two samples; memory is VmRSS summed over a tree, sampled while a level runs to find its
peak. The client measures itself with ``time.process_time``; nothing here is timed by the clock.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from tests.support.serve import descendants

CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 5.0
RSS_SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class CpuSample:
    ticks: dict[int, tuple[str, int]]
    """pid -> (label, utime+stime+cutime+cstime in clock ticks)"""

    @property
    def total(self) -> int:
        return sum(ticks for _, ticks in self.ticks.values())


def label(pid: int, root: int) -> str:
    """A short name for a process of the tree: its command name, the embedded MongoDB by what it runs."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if pid == root:
        return f"{comm} (root)"
    if "nx_server" in command:
        return "nx_server (mongodb)"
    return comm


def tree(root: int) -> set[int]:
    return {root, *descendants(root)}


def cpu_sample(root: int) -> CpuSample:
    ticks: dict[int, tuple[str, int]] = {}
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state.
        ticks[pid] = (label(pid, root), sum(int(value) for value in fields[11:15]))
    return CpuSample(ticks)


def cpu_by_label(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Milliseconds of CPU per process label between the samples (a process born in between counts whole)."""
    spent: dict[str, float] = defaultdict(float)
    for pid, (name, ticks) in after.ticks.items():
        spent[name] += (ticks - before.ticks.get(pid, (name, 0))[1]) * CLOCK_TICK_MS
    return dict(spent)


async def settle(root: int) -> None:
    """Wait (up to SETTLE_SECONDS) until the server tree is idle, so background work of the last turns
    (conversation titles, buffered audit writes) is counted in the level that caused it."""
    deadline = time.monotonic() + SETTLE_SECONDS
    previous = cpu_sample(root).total
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        current = cpu_sample(root).total
        if current - previous <= 1:
            return
        previous = current


def rss_mib(pids: set[int]) -> float:
    """VmRSS summed over ``pids`` (those gone meanwhile count nothing), in MiB."""
    kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
                    break
        except OSError:
            continue
    return kib / 1024


def rss_by_label(root: int) -> dict[str, float]:
    """VmRSS in MiB per process label of the tree (the idle figure, before the first question)."""
    spent: dict[str, float] = defaultdict(float)
    for pid in tree(root):
        spent[label(pid, root)] += rss_mib({pid})
    return dict(spent)


def pss_mib(pid: int) -> float:
    """Proportional set size: pages shared with another process (a forked web worker and its parent, say)
    count a share each, so a tree's sum is the memory it really holds."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_by_label(root: int) -> dict[str, float]:
    spent: dict[str, float] = defaultdict(float)
    for pid in tree(root):
        spent[label(pid, root)] += pss_mib(pid)
    return dict(spent)


class PeakRss:
    """The largest summed VmRSS of a process tree, sampled every RSS_SAMPLE_SECONDS while in ``async with``.

    The tree is listed once on entry (walking all of /proc every sample would cost the client CPU it is
    measuring itself with) and again on exit, for processes born during the level."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._watch(tree(self.root)))
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        self.peak = max(self.peak, rss_mib(tree(self.root)))

    async def _watch(self, pids: set[int]) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(pids))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RSS_SAMPLE_SECONDS)


def thread_sample(pid: int) -> CpuSample:
    """utime+stime per thread of ``pid``, labelled by OS thread name; the main thread (the event loop in a
    web worker) as "main thread", threads that kept the process's name together. A thread that ended
    between two samples is missing from the second."""
    ticks: dict[int, tuple[str, int]] = {}
    try:
        process_name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return CpuSample(ticks)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tid = int(task.name)
        if tid == pid:
            name = "main thread"
        elif name == process_name:  # Python's pool threads and ONNX Runtime's are not named for the OS
            name = "unnamed threads (Python pools, ONNX)"
        ticks[tid] = (name, int(fields[11]) + int(fields[12]))
    return CpuSample(ticks)

"""``--profile``: py-spy samples a running process during a measured level; the top functions are printed.

``py-spy record --format raw --nonblocking`` (the target is never paused: the profile does not slow what
it measures) writes collapsed stacks, one ``frame;frame;...;frame count`` line each. This module sums
them itself: a function's *own* samples are those where it is the innermost frame, its *total* samples
those where it is anywhere on the stack (counted once per stack, so recursion does not inflate it).
Idle threads are left out by py-spy, but a thread blocked in C (``select``, a pool thread waiting for
work) can still be sampled as running: stacks ending in such a wait are counted apart as "waiting".
The plumbing above a task (the event loop's ``Handle._run``, a pool's ``_WorkItem.run``) is on every
stack, so *total* counts only frames below the innermost of those: the work, not the dispatcher.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 200
DISPATCHERS = frozenset(
    {"Handle._run (asyncio/events.py)", "_WorkItem.run (concurrent/futures/thread.py)", "Thread.run (threading.py)"}
)
WAITS = frozenset(
    {
        "EpollSelector.select (selectors.py)",
        "_worker (concurrent/futures/thread.py)",
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
    }
)
LIBRARY_PREFIX = re.compile(r"^.*(site-packages/|/src/|/lib/python3\.\d+/)")
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class Profile:
    """Sample counts by function (``name (file)``, the line dropped so one function is one row)."""

    samples: int = 0
    waiting: int = 0
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def top(self, counts: Counter[str], n: int = 20) -> list[tuple[str, float]]:
        """The ``n`` largest, as percentages of the busy (not waiting) samples."""
        busy = self.samples - self.waiting
        return [(name, 100 * count / busy) for name, count in counts.most_common(n)] if busy else []


def short_frame(frame: str) -> str:
    """``function (package/module.py)``: site-packages and the checkout's ``src/`` are cut off the path."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = LIBRARY_PREFIX.sub("", match["file"])
    return f"{match['function']} ({path})"


def aggregate(collapsed: str) -> Profile:
    profile = Profile()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        profile.samples += count
        if frames[-1] in WAITS:
            profile.waiting += count
            continue
        profile.own[frames[-1]] += count
        below = max((index for index, name in enumerate(frames) if name in DISPATCHERS), default=-1)
        for name in set(frames[below + 1 :]):
            profile.total[name] += count
    return profile


class Recorder:
    """py-spy recording one process until ``stop``; ``None`` from ``stop`` when py-spy could not run."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        self.problem = ""

    def start(self) -> Recorder:
        if not PY_SPY.exists():
            self.problem = f"no py-spy at {PY_SPY} (pip install py-spy into the venv)"
            return self
        command = [
            str(PY_SPY), "record", "--pid", str(self.pid), "--rate", str(RATE), "--format", "raw",
            "--nonblocking", "--output", str(self.output),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def stop(self) -> Profile | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            _, errors = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        if not self.output.exists():
            self.problem = errors.decode(errors="replace").strip()[-500:] or f"py-spy exited {self.process.returncode}"
            return None
        return aggregate(self.output.read_text(errors="replace"))


def report(name: str, profile: Profile | None, problem: str = "", n: int = 20) -> list[str]:
    """Printable lines: the top ``n`` functions by own samples, then by total samples."""
    if profile is None or not profile.samples:
        return [f"  profile of {name}: none ({problem or 'no samples'})"]
    lines = [
        f"  profile of {name}: {profile.samples} samples at {RATE}/s, {profile.waiting} of them waiting "
        "(select, idle pool threads); shares below are of the busy ones"
    ]
    for title, counts in (("own", profile.own), ("total", profile.total)):
        lines.append(f"    top {n} by {title} samples:")
        lines += [f"      {share:5.1f}%  {function}" for function, share in profile.top(counts, n)]
    return lines


def as_json(profile: Profile | None, n: int = 20) -> dict[str, object] | None:
    if profile is None:
        return None
    return {
        "samples": profile.samples,
        "waiting": profile.waiting,
        "own_percent": profile.top(profile.own, n),
        "total_percent": profile.top(profile.total, n),
    }

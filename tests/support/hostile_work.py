"""Work that misbehaves, run in a parse worker by the tests (a worker imports it by name, so it lives here)."""

from __future__ import annotations

import time


def allocate(megabytes: int) -> int:
    """Hold ``megabytes`` MB at once."""
    held = bytearray(megabytes * 1024 * 1024)
    return len(held)


def spin(seconds: float) -> int:
    """Burn CPU for up to ``seconds`` seconds."""
    deadline = time.process_time() + seconds
    count = 0
    while time.process_time() < deadline:
        count += 1
    return count


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def echo(value: str) -> str:
    return value

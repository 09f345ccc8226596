"""The standalone worker's liveness file, for a container exec probe.

``medchat worker`` touches the file every few seconds while its Redis answers and removes it when it stops;
``medchat worker --check`` exits 0 while the file is fresh. Standard library only: the probe runs often, so
it must start without loading the settings, the app or a store client.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

HEARTBEAT_PATH_VARIABLE = "MEDCHAT_WORKER_HEARTBEAT_PATH"


def default_heartbeat_file() -> Path:
    return Path(tempfile.gettempdir()) / "medchat-worker.alive"


def configured_heartbeat_file() -> Path:
    """The file the worker of this environment touches (``Settings.worker_heartbeat_path``, read without it)."""
    return Path(os.environ.get(HEARTBEAT_PATH_VARIABLE) or default_heartbeat_file())


def beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def clear(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def age_seconds(path: Path) -> float | None:
    """Seconds since the last beat, or None when there is no heartbeat file."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None

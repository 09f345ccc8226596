"""The data dir is its owner's alone: folders 0700, files 0600 (``make_private``, ``write_private``,
``PRIVATE_UMASK`` for every medchat process), and one medchat process at a time holds it (``DataDirLock``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


class DataDirInUse(RuntimeError):
    """Another medchat process holds the data dir."""


def make_private(root: Path) -> None:
    """Owner-only access to ``root`` and everything below it: folders 0700, files 0600.

    Run when medchat takes a data dir, so one written by an older version (0755 folders, 0644 files) is
    tightened; new files are private anyway under medchat's umask. Symbolic links are left alone.
    """
    if root.is_dir() and not root.is_symlink():
        _set_mode(str(root), root.stat().st_mode, 0o700)
        _make_entries_private(str(root))


def _make_entries_private(folder: str) -> None:
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _set_mode(entry.path, entry.stat(follow_symlinks=False).st_mode, 0o700)
                _make_entries_private(entry.path)
            elif entry.is_file(follow_symlinks=False):
                _set_mode(entry.path, entry.stat(follow_symlinks=False).st_mode, 0o600)


def _set_mode(path: str, mode: int, wanted: int) -> None:
    if stat.S_IMODE(mode) != wanted:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, wanted)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    candidate = path.with_name(path.name + ".tmp")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    candidate.replace(path)


class DataDirLock:
    """An exclusive ``flock`` on ``<data dir>/medchat.lock``, released when the holder exits or dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "medchat.lock"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock; the data dir is made private (``make_private``) once it is held."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        make_private(self.path.parent)
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

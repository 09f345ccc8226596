"""Originals as files in the data dir (one machine, or a volume every process mounts)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 256 * 1024


class FileStore:
    """Each original at ``<root>/<key[:2]>/<key>``, written to a ``.partial`` file renamed when complete."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key[:2] / key

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, filename: str) -> int:
        path = self.path(key)
        partial = path.with_suffix(".partial")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(partial.open, "wb")
        length = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
                length += len(chunk)
            await asyncio.to_thread(_flush_to_disk, handle)
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        await asyncio.to_thread(partial.replace, path)
        return length

    async def length(self, key: str) -> int:
        return (await asyncio.to_thread(self.path(key).stat)).st_size

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = await asyncio.to_thread(
                    handle.read, CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                )
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)


def _flush_to_disk(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())

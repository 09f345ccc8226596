"""Originals uploaded before they moved to GridFS stay readable from the data dir where they were written."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medchat.retrieval.originals import OriginalStore


class WithEarlierStore:
    """New files go to ``current``; a key ``current`` does not hold is looked up in ``earlier``; a delete
    removes it from both."""

    def __init__(self, current: OriginalStore, earlier: OriginalStore) -> None:
        self._current = current
        self._earlier = earlier

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, filename: str) -> int:
        return await self._current.save(key, chunks, filename=filename)

    async def length(self, key: str) -> int:
        try:
            return await self._current.length(key)
        except FileNotFoundError:
            return await self._earlier.length(key)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        holder = self._current
        try:
            await holder.length(key)
        except FileNotFoundError:
            holder = self._earlier
        async for chunk in holder.stream(key, start, end):
            yield chunk

    async def read(self, key: str) -> bytes:
        try:
            return await self._current.read(key)
        except FileNotFoundError:
            return await self._earlier.read(key)

    async def delete(self, key: str) -> None:
        await self._current.delete(key)
        await self._earlier.delete(key)

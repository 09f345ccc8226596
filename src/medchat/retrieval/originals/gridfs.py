"""Originals in MongoDB GridFS, bucket ``originals``, in the standard layout (``originals.files`` and
``originals.chunks``), so ``mongodump`` and ``mongofiles --prefix originals`` see ordinary GridFS files.

PyMongo's own GridFS upload buffers up to 48 MB of chunks before it writes; this one writes every few chunks
as they arrive and reads a few at a time, so memory stays near ``BATCH_CHUNKS`` chunks whatever the file's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from bson import Binary, ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

BUCKET = "originals"
CHUNK_BYTES = 255 * 1024
"""GridFS's default chunk size."""
BATCH_CHUNKS = 4
"""Chunks written by one ``insert_many`` and read by one query."""


class GridFSOriginalStore:
    """``database`` is called on first use: the store is built before anything may touch MongoDB."""

    def __init__(self, database: Callable[[], AsyncDatabase[Any]], *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._database = database
        self._chunk_bytes = chunk_bytes
        self._indexed = False

    @property
    def files(self) -> AsyncCollection[Any]:
        return self._database()[f"{BUCKET}.files"]

    @property
    def chunks(self) -> AsyncCollection[Any]:
        return self._database()[f"{BUCKET}.chunks"]

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, filename: str) -> int:
        """Chunks first, in batches, then the files document: a file is visible only once complete, and a
        failed or cancelled upload deletes the chunks it wrote."""
        await self._ensure_indexes()
        file_id = _file_id(key)
        try:
            length = await self._write_chunks(file_id, chunks)
            await self.files.insert_one(
                {
                    "_id": file_id,
                    "length": length,
                    "chunkSize": self._chunk_bytes,
                    "uploadDate": datetime.now(UTC),
                    "filename": filename,
                    "metadata": {"key": key},
                }
            )
        except BaseException:
            await self.chunks.delete_many({"files_id": file_id})
            await self._delete_file_document(file_id)
            raise
        return length

    async def _write_chunks(self, file_id: ObjectId | str, chunks: AsyncIterable[bytes]) -> int:
        pending = bytearray()
        batch: list[dict[str, Any]] = []
        number = length = 0

        async def flush() -> None:
            if batch:
                await self.chunks.insert_many(batch, ordered=True)
                batch.clear()

        async for piece in chunks:
            pending += piece
            length += len(piece)
            while len(pending) >= self._chunk_bytes:
                batch.append(_chunk(file_id, number, bytes(pending[: self._chunk_bytes])))
                del pending[: self._chunk_bytes]
                number += 1
                if len(batch) >= BATCH_CHUNKS:
                    await flush()
        if pending:
            batch.append(_chunk(file_id, number, bytes(pending)))
        await flush()
        return length

    async def length(self, key: str) -> int:
        return int((await self._file(key))["length"])

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Only the chunks holding bytes ``start``..``end``, a few per query, the first and last sliced."""
        file = await self._file(key)
        chunk_bytes, length = int(file["chunkSize"]), int(file["length"])
        last_byte = length - 1 if end is None else min(end, length - 1)
        if start > last_byte:
            return
        first, last = start // chunk_bytes, last_byte // chunk_bytes
        for window in range(first, last + 1, BATCH_CHUNKS):
            numbers = range(window, min(window + BATCH_CHUNKS, last + 1))
            async for number, data in self._chunks_in(file["_id"], numbers):
                offset = number * chunk_bytes
                yield data[max(start - offset, 0) : last_byte - offset + 1]

    async def _chunks_in(self, file_id: ObjectId | str, numbers: range) -> AsyncIterator[tuple[int, bytes]]:
        query = {"files_id": file_id, "n": {"$gte": numbers.start, "$lt": numbers.stop}}
        found = [chunk async for chunk in self.chunks.find(query, sort=[("n", ASCENDING)])]
        if [chunk["n"] for chunk in found] != list(numbers):
            raise FileNotFoundError(f"original {file_id} is missing chunks {numbers.start}..{numbers.stop - 1}")
        for chunk in found:
            yield chunk["n"], bytes(chunk["data"])

    async def read(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream(key)])

    async def delete(self, key: str) -> None:
        """The files document first, so a half-deleted file is never served."""
        file_id = _file_id(key)
        await self._delete_file_document(file_id)
        await self.chunks.delete_many({"files_id": file_id})

    async def _delete_file_document(self, file_id: ObjectId | str) -> None:
        """The embedded store (nx-27017) keeps GridFS buckets in tables of its own: a chunk written before its
        files document creates a placeholder one (length 0), and deleting a files document that is not there
        is an error; MongoDB has neither, so this works on both."""
        try:
            await self.files.delete_one({"_id": file_id})
        except OperationFailure as error:
            if "not found" not in str(error):
                raise

    async def _file(self, key: str) -> dict[str, Any]:
        file = await self.files.find_one({"_id": _file_id(key)})
        if file is None:
            raise FileNotFoundError(f"no original stored under {key!r}")
        return file

    async def _ensure_indexes(self) -> None:
        """The indexes GridFS drivers create, so other tools read this bucket as fast as their own."""
        if not self._indexed:
            await self.chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
            await self.files.create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])
            self._indexed = True


def _file_id(key: str) -> ObjectId | str:
    """Keys are document ids: stored as ObjectIds, as GridFS tools expect of ``_id``."""
    return ObjectId(key) if ObjectId.is_valid(key) else key


def _chunk(file_id: ObjectId | str, number: int, data: bytes) -> dict[str, Any]:
    return {"_id": ObjectId(), "files_id": file_id, "n": number, "data": Binary(data)}

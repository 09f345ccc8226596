"""An upload on its way into the original store: read in chunks from a seekable file (Litestar's spooled
temporary file, on disk past 1 MB), its type sniffed from its first bytes, its hash taken on the way."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from typing import BinaryIO, Protocol

from medchat.platform.errors import UnsupportedMediaType
from medchat.retrieval.parsing import detect_media_type
from medchat.retrieval.parsing.detection import DOCX, is_docx

CHUNK_BYTES = 256 * 1024
SNIFF_BYTES = 1024 * 1024
"""A file up to this size is typed from all its bytes, as ingestion types it; a larger one from these first bytes."""
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Incoming:
    """Reads run in a thread: a spooled file past its memory limit is a file on disk."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    @classmethod
    def of(cls, data: bytes | BinaryIO) -> Incoming:
        return cls(io.BytesIO(data) if isinstance(data, bytes) else data)

    async def size(self) -> int:
        return await asyncio.to_thread(self._file.seek, 0, os.SEEK_END)

    async def media_type(self) -> str:
        """What ``detect_media_type`` says of the whole file, judged from its first ``SNIFF_BYTES`` (a DOCX
        from its zip directory, read in place): ``UnsupportedMediaType`` otherwise."""
        head = await self._read_at(0, SNIFF_BYTES)
        if len(head) < SNIFF_BYTES or not head.startswith(b"PK\x03\x04"):
            return detect_media_type(head if len(head) < SNIFF_BYTES else _whole_characters(head))
        if await asyncio.to_thread(self._is_docx_in_place):
            return DOCX
        raise UnsupportedMediaType("unsupported file type: a zip archive that is not a DOCX document")

    async def chunks(self, digest: Digest) -> AsyncIterator[bytes]:
        """The file from its start, each chunk added to ``digest`` as it passes."""
        await asyncio.to_thread(self._file.seek, 0)
        while chunk := await asyncio.to_thread(self._file.read, CHUNK_BYTES):
            digest.update(chunk)
            yield chunk

    async def _read_at(self, offset: int, size: int) -> bytes:
        def read() -> bytes:
            self._file.seek(offset)
            return self._file.read(size)

        return await asyncio.to_thread(read)

    def _is_docx_in_place(self) -> bool:
        self._file.seek(0)
        return is_docx(self._file)


def _whole_characters(head: bytes) -> bytes:
    """``head`` without a character cut off at its end (which would make UTF-8 text look binary)."""
    codec = "utf-16" if head.startswith(_UTF16_BOMS) else "utf-8"
    try:
        head.decode(codec)
    except UnicodeDecodeError as error:
        if error.end == len(head):
            return head[: error.start]
    return head

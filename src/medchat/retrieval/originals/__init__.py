"""Original uploaded files, kept so a citation can open them: in MongoDB GridFS (the default, so web and
worker processes need no shared disk; files an earlier version left in the data dir are still read from
there) or in the data dir (``MEDCHAT_ORIGINALS_STORE=files``).

Both stores take a file as a stream of chunks and give it back as one, whole or a byte range, so neither an
upload nor a download holds a whole file in memory (the ingestion job still reads one whole, to parse it).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from medchat.retrieval.models import SourceDocument
from medchat.retrieval.originals.disk import FileStore
from medchat.retrieval.originals.fallback import WithEarlierStore
from medchat.retrieval.originals.gridfs import GridFSOriginalStore
from medchat.settings import Settings

__all__ = ["FileStore", "GridFSOriginalStore", "OriginalStore", "open_original_store"]


class OriginalStore(Protocol):
    """Files addressed by keys the document service generates (a document's id), never by user-supplied names.
    A missing file raises ``FileNotFoundError``."""

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, filename: str) -> int:
        """Store the chunks as they arrive and return the file's length; a file is readable only once
        complete, and nothing of it is left when ``chunks`` raises."""
        ...

    async def length(self, key: str) -> int: ...

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (to the last byte when None), in chunks of the store's size."""
        ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens when it is already gone."""
        ...


def open_original_store(settings: Settings) -> OriginalStore:
    """The store ``MEDCHAT_ORIGINALS_STORE`` names; GridFS goes through the database Beanie was opened on."""
    files = FileStore(settings.uploads_dir)
    if settings.originals_store == "files":
        return files
    gridfs = GridFSOriginalStore(lambda: SourceDocument.get_pymongo_collection().database)
    # Originals an earlier medchat kept in the data dir stay readable (and deletable) there.
    return WithEarlierStore(gridfs, files) if settings.uploads_dir.is_dir() else gridfs

"""The one interface every vector store adapter implements (contract: tests/retrieval/test_vectorstore.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from medchat.retrieval.scope import SearchScope
from medchat.retrieval.sparse import SparseVector
from medchat.retrieval.vectorstore.records import Hit, HybridParams, PassagePoint, SearchMode


class VectorStore(Protocol):
    """Passages with a named dense vector (cosine), a named sparse vector (IDF modifier) and a payload.

    Every search filters inside the store: shared passages plus the scope user's private ones.
    """

    @property
    def collection(self) -> str:
        """The collection's name (span attributes; never a user's data)."""
        ...

    async def ensure_collection(self) -> None:
        """Create the collection and its payload indexes if missing; check the dimension if present."""

    async def upsert(self, points: Sequence[PassagePoint]) -> None: ...

    async def delete_document(self, document_id: str, *, from_chunk_index: int = 0) -> None:
        """Remove the document's points whose ``chunk_index >= from_chunk_index`` (all by default)."""

    async def delete_owner(self, owner_id: str) -> None: ...

    async def search(
        self,
        dense: np.ndarray,
        sparse: SparseVector,
        *,
        scope: SearchScope,
        limit: int,
        mode: SearchMode = "hybrid",
        hybrid: HybridParams = HybridParams(),  # noqa: B008 - frozen, so a shared default is safe
    ) -> list[Hit]: ...

    async def count(self, *, document_id: str | None = None) -> int: ...

    async def ping(self) -> bool:
        """True when the store answers; never raises."""

    async def close(self) -> None: ...

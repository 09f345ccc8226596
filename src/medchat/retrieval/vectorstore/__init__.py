"""Vector stores: one protocol, an embedded adapter (Qdrant Edge) and a server adapter (qdrant-client)."""

from __future__ import annotations

from medchat.retrieval.vectorstore.edge import EdgeVectorStore
from medchat.retrieval.vectorstore.protocol import VectorStore
from medchat.retrieval.vectorstore.records import Hit, HybridParams, PassagePoint, PassageRecord, SearchMode, point_id
from medchat.settings import Settings

EMBEDDED_STORE_DIR = "qdrant"

__all__ = [
    "EdgeVectorStore",
    "Hit",
    "HybridParams",
    "PassagePoint",
    "PassageRecord",
    "SearchMode",
    "VectorStore",
    "open_vector_store",
    "point_id",
]


def open_vector_store(settings: Settings) -> VectorStore:
    """The server adapter when ``qdrant_url`` is set, else Qdrant Edge under ``data_dir/qdrant``.

    Nothing is opened or contacted yet: await ``ensure_collection()`` at start-up.
    """
    if settings.qdrant_url:
        # qdrant-client takes seconds to import: only a deployment with a Qdrant server loads it.
        from medchat.retrieval.vectorstore.server import QdrantServerVectorStore

        return QdrantServerVectorStore.from_url(
            settings.qdrant_url, api_key=settings.qdrant_api_key, collection=settings.qdrant_collection
        )
    return EdgeVectorStore(settings.data_dir / EMBEDDED_STORE_DIR / settings.qdrant_collection)

"""The knowledge base of one process, opened in one call: the vector store, the retriever and the
document service. The runtime asks for this and nothing else; the store adapters stay inside the module."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from medchat.platform.instances import InstanceHeartbeat
from medchat.retrieval.originals import open_original_store
from medchat.retrieval.search import Retriever
from medchat.retrieval.services import DocumentService, JobQueue
from medchat.retrieval.vectorstore import VectorStore, open_vector_store
from medchat.settings import Settings


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """``retriever`` is None in a CLI process that joined a running server on embedded stores: that
    server holds the index (one process per storage path), so documents are queued to it."""

    documents: DocumentService
    retriever: Retriever | None
    _store: VectorStore | None = None

    async def ping(self) -> bool:
        """Whether the vector store answers (a readiness check; False where this process has none)."""
        return self._store is not None and await self._store.ping()

    async def close(self) -> None:
        self.documents.close()
        if self._store is not None:
            await self._store.close()


async def open_knowledge_base(
    settings: Settings,
    *,
    queue: JobQueue,
    joined_running: bool,
    redis: Redis | None = None,
    instances: InstanceHeartbeat | None = None,
) -> KnowledgeBase:
    """Open the vector store (Qdrant server when ``qdrant_url`` is set, else Qdrant Edge) unless this
    process joined a running server that holds the embedded one; nothing to close if this raises."""
    store: VectorStore | None = None
    retriever: Retriever | None = None
    if settings.qdrant_url or not joined_running:
        store = open_vector_store(settings)
        try:
            await store.ensure_collection()
        except BaseException:
            await store.close()
            raise
        retriever = Retriever.from_settings(settings, store=store)
    documents = DocumentService(
        retriever=retriever,
        files=open_original_store(settings),
        queue=queue,
        settings=settings,
        redis=redis,
        instances=instances,
    )
    return KnowledgeBase(documents=documents, retriever=retriever, _store=store)

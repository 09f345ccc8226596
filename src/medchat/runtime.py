"""The composition root: open every store and service a process needs, once, and close them in order.

The web app's lifespan and the arq worker's start-up both call ``Runtime.open``, so a job sees the
same services as a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from arq.connections import ArqRedis, RedisSettings, create_pool

from medchat import auth, chat, retrieval
from medchat.llm import LLMProvider, build_provider
from medchat.platform.audit import AuditEvent
from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED, EventBus
from medchat.platform.health import ReadinessChecks
from medchat.platform.logging import add_scrubber, configure_logging
from medchat.platform.stores import Stores
from medchat.retrieval import (
    DocumentService,
    FileStore,
    Passage,
    Retriever,
    SearchScope,
    VectorStore,
    open_vector_store,
)
from medchat.settings import Settings

QUEUE_NAME = "medchat:jobs"


def document_models() -> list[type]:
    return [AuditEvent, *auth.document_models, *chat.document_models, *retrieval.document_models]


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    job_queue: ArqRedis
    readiness: ReadinessChecks = field(default_factory=ReadinessChecks)
    events: EventBus = field(default_factory=EventBus)
    """Each module's ``event_handlers`` are subscribed here when the runtime opens."""
    llm: LLMProvider | None = None
    """Built once per process from the settings: remote, local or sources-only."""
    vector_store: VectorStore | None = None
    retriever: Retriever | None = None
    """None only in a CLI process that joined a running server, which owns the embedded index."""
    documents: DocumentService | None = None
    chat_engine: chat.ChatEngine | None = None

    @classmethod
    async def open(cls, settings: Settings, *, join_running: bool = False) -> Runtime:
        stores = await Stores.open(settings, document_models=document_models(), join_running=join_running)
        try:
            job_queue = await create_pool(arq_redis_settings(stores.redis_url), default_queue_name=QUEUE_NAME)
        except BaseException:
            await stores.close()
            raise
        runtime = cls(settings=settings, stores=stores, job_queue=job_queue)
        for module in (auth, chat):
            for event, handler in module.event_handlers.items():
                runtime.events.subscribe(event, handler)
        runtime.readiness.add("mongodb", stores.ping_mongodb)
        runtime.readiness.add("redis", stores.ping_redis)
        try:
            await runtime._open_retrieval()
            # Traces (LangSmith, when on) never carry health identifiers, whatever the model is sent.
            runtime.llm = build_provider(settings, redact=chat.redact_phi)
            runtime.readiness.add("llm", runtime.llm.ping)
            runtime.chat_engine = chat.ChatEngine(
                settings,
                provider=runtime.llm,
                search=runtime.search_passages,
                limits=chat.ChatLimits(stores.redis, settings),
            )
            await runtime.chat_engine.open()
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _open_retrieval(self) -> None:
        if self.settings.qdrant_url or not self.stores.joined:
            self.vector_store = open_vector_store(self.settings)
            await self.vector_store.ensure_collection()
            self.retriever = Retriever.from_settings(self.settings, store=self.vector_store)
            self.readiness.add("qdrant", self.vector_store.ping)
        self.documents = DocumentService(
            retriever=self.retriever,
            files=FileStore(self.settings.uploads_dir),
            queue=self.job_queue,
            settings=self.settings,
        )
        self.events.subscribe(USER_DELETED, self.documents.delete_owner_data)
        self.events.subscribe(USER_EXPORT_REQUESTED, self.documents.export_owner_data)

    async def search_passages(self, query: str, *, user_id: str, is_admin: bool) -> Sequence[Passage]:
        """The chat pipeline's search: what ``user_id`` may see, or nothing while there is no retriever."""
        if self.retriever is None:
            return []
        return await self.retriever.search(query, scope=SearchScope(user_id=user_id, is_admin=is_admin))

    async def close(self) -> None:
        if self.chat_engine is not None:
            await self.chat_engine.close()
        if self.llm is not None:
            await self.llm.aclose()
        if self.vector_store is not None:
            await self.vector_store.close()
        await self.job_queue.aclose()
        await self.stores.close()


def configure_process_logging(settings: Settings) -> None:
    """Logging for a medchat process (web app, worker, CLI): structlog set up, and health identifiers
    (e-mail addresses, phone numbers, record numbers...) scrubbed from every log line."""
    configure_logging(settings)
    add_scrubber(chat.phi_scrubber)


def arq_redis_settings(redis_url: str) -> RedisSettings:
    return RedisSettings.from_dsn(redis_url)

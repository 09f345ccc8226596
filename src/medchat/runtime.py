"""The composition root: open every store and service a process needs, once, and close them in order.

The web app's lifespan and the arq worker's start-up both call ``Runtime.open``, so a job sees the
same services as a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from arq.connections import ArqRedis, RedisSettings, create_pool

from medchat import auth, chat, retrieval
from medchat.llm import LLMProvider, ModelRegistry, build_model_registry
from medchat.platform.audit import AuditEvent
from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED, EventBus
from medchat.platform.health import ReadinessChecks
from medchat.platform.instances import InstanceHeartbeat, repeat_every
from medchat.platform.metrics import QUEUE_DEPTH
from medchat.platform.registry import ServiceRegistry
from medchat.platform.stores import Stores
from medchat.retrieval import KnowledgeBase, Passage, Retriever, SearchScope, open_knowledge_base
from medchat.settings import Settings

log = structlog.get_logger(__name__)

QUEUE_NAME = "medchat:jobs"
QUEUE_DEPTH_SECONDS = 5.0
"""How often every process reads the queue's length into ``QUEUE_DEPTH`` (the worker autoscaler follows it)."""


def document_models() -> list[type]:
    return [AuditEvent, *auth.document_models, *chat.document_models, *retrieval.document_models]


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    job_queue: ArqRedis
    readiness: ReadinessChecks = field(default_factory=ReadinessChecks)
    services: ServiceRegistry = field(default_factory=ServiceRegistry)
    """The long-lived services by type; each module's ``deps.py`` provides them to its handlers."""
    events: EventBus = field(default_factory=EventBus)
    """Every cross-module reaction is subscribed in ``_subscribe_reactions``."""
    llm: LLMProvider | None = None
    """Built once per process from the settings: remote, local or sources-only (the default of ``models``)."""
    models: ModelRegistry | None = None
    """Every model offered (``MEDCHAT_LLM_MODELS``, sources-only): the chat's picker and ``/v1`` list it."""
    knowledge_base: KnowledgeBase | None = None
    retriever: Retriever | None = None
    """The chat's search; None only in a CLI process that joined a running server, which owns the embedded index."""
    chat_engine: chat.ChatEngine | None = None
    instance: InstanceHeartbeat | None = None
    """This process's heartbeat: answers and ingestion jobs it runs carry its id (see ``sweep_orphans``)."""
    queue_depth_updates: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, *, join_running: bool = False) -> Runtime:
        stores = await Stores.open(settings, document_models=document_models(), join_running=join_running)
        try:
            job_queue = await create_pool(arq_redis_settings(stores.redis_url), default_queue_name=QUEUE_NAME)
        except BaseException:
            await stores.close()
            raise
        runtime = cls(settings=settings, stores=stores, job_queue=job_queue)
        runtime.services.register(auth.Accounts(settings=settings, redis=stores.redis, events=runtime.events))
        runtime.readiness.add("mongodb", stores.ping_mongodb)
        runtime.readiness.add("redis", stores.ping_redis)
        try:
            runtime.instance = InstanceHeartbeat(
                stores.redis,
                ttl_seconds=settings.instance_ttl_seconds,
                interval_seconds=settings.instance_heartbeat_seconds,
            )
            await runtime.instance.start()
            await runtime._open_retrieval()
            # Traces (LangSmith, when on) never carry health identifiers, whatever the model is sent.
            # Sources-only answers score sentences with the knowledge base's own embedding model.
            embed = runtime.retriever.embedder.embed_async if runtime.retriever is not None else None
            runtime.models = runtime.services.register(
                build_model_registry(settings, redact=chat.redact_phi, embed=embed)
            )
            runtime.llm = runtime.models.default.provider
            runtime.readiness.add("llm", runtime.llm.ping, optional=True)  # chat answers 503 on its own
            runtime.chat_engine = runtime.services.register(
                chat.ChatEngine(
                    settings,
                    provider=runtime.llm,
                    search=runtime.search_passages,
                    limits=chat.ChatLimits(stores.redis, settings),
                    instances=runtime.instance,
                    sources_only=runtime.models.sources_only.provider if runtime.models.sources_only else None,
                )
            )
            for service in runtime.chat_engine.handler_services():
                runtime.services.register(service)
            await runtime.chat_engine.open()
            runtime._subscribe_reactions()
            runtime.queue_depth_updates = asyncio.create_task(
                repeat_every(QUEUE_DEPTH_SECONDS, runtime.update_queue_depth, name="queue depth"), name="queue-depth"
            )
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _open_retrieval(self) -> None:
        self.knowledge_base = await open_knowledge_base(
            self.settings,
            queue=self.job_queue,
            joined_running=self.stores.joined,
            redis=self.stores.redis,
            instances=self.instance,
        )
        self.services.register(self.knowledge_base.documents)
        self.retriever = self.knowledge_base.retriever
        if self.retriever is not None:
            self.services.register(self.retriever)
            self.readiness.add("qdrant", self.knowledge_base.ping)

    def _subscribe_reactions(self) -> None:
        """Every cross-module reaction, in one place. ``auth`` publishes the account events; each module
        holding a user's data deletes or exports its share."""
        assert self.chat_engine is not None and self.knowledge_base is not None
        owners_of_user_data = (self.chat_engine, self.knowledge_base.documents)
        for module_service in owners_of_user_data:
            self.events.subscribe(USER_DELETED, module_service.delete_owner_data)
            self.events.subscribe(USER_EXPORT_REQUESTED, module_service.export_owner_data)

    async def search_passages(self, query: str, *, user_id: str, is_admin: bool) -> Sequence[Passage]:
        """The chat pipeline's search: what ``user_id`` may see, or nothing while there is no retriever."""
        if self.retriever is None:
            return []
        return await self.retriever.search(query, scope=SearchScope(user_id=user_id, is_admin=is_admin))

    async def sweep_orphans(self) -> None:
        """Fail the answers and requeue the ingestion jobs of processes that died (their instance heartbeat
        lapsed); serving and worker processes run this every ``orphan_sweep_seconds``."""
        if self.chat_engine is not None:
            await self.chat_engine.fail_orphaned()
        if self.knowledge_base is not None:
            await self.knowledge_base.documents.requeue_orphaned()

    async def update_queue_depth(self) -> None:
        """Set ``QUEUE_DEPTH`` to the jobs in arq's queue (a sorted set holding each job until it finishes, so
        queued, deferred and running ones). A Redis that does not answer leaves the last value: the
        readiness check reports Redis, and this runs again in a few seconds."""
        try:
            QUEUE_DEPTH.set(await self.job_queue.zcard(QUEUE_NAME))
        except Exception as error:  # noqa: BLE001 - a gauge update must never disturb the process
            log.debug("queue depth not read", error=str(error))

    async def close(self) -> None:
        if self.queue_depth_updates is not None:
            self.queue_depth_updates.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.queue_depth_updates
        if self.chat_engine is not None:
            await self.chat_engine.close()
        if self.models is not None:
            await self.models.aclose()
        elif self.llm is not None:
            await self.llm.aclose()
        if self.knowledge_base is not None:
            await self.knowledge_base.close()
        if self.instance is not None:
            await self.instance.stop()
        await self.services.get(auth.Accounts).close()
        await self.job_queue.aclose()
        await self.stores.close()


def arq_redis_settings(redis_url: str) -> RedisSettings:
    return RedisSettings.from_dsn(redis_url)

"""The composition root: open every store and service a process needs, once, and close them in order.

The web app's lifespan and the arq worker's start-up both call ``Runtime.open``, so a job sees the
same services as a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis, RedisSettings, create_pool

from medchat import auth, chat
from medchat.platform.audit import AuditEvent
from medchat.platform.events import EventBus
from medchat.platform.health import ReadinessChecks
from medchat.platform.stores import Stores
from medchat.settings import Settings

QUEUE_NAME = "medchat:jobs"


def document_models() -> list[type]:
    return [AuditEvent, *auth.document_models, *chat.document_models]


@dataclass
class Runtime:
    settings: Settings
    stores: Stores
    job_queue: ArqRedis
    readiness: ReadinessChecks = field(default_factory=ReadinessChecks)
    events: EventBus = field(default_factory=EventBus)
    """Each module's ``event_handlers`` are subscribed here when the runtime opens."""

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
        return runtime

    async def close(self) -> None:
        await self.job_queue.aclose()
        await self.stores.close()


def arq_redis_settings(redis_url: str) -> RedisSettings:
    return RedisSettings.from_dsn(redis_url)

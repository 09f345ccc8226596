"""``create_app(settings)``: wires the modules' routers, plugins and middleware into one Litestar app."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.opentelemetry import OpenTelemetryPlugin

from medchat import __version__, auth, chat, retrieval
from medchat.logs import configure_process_logging
from medchat.platform.access_log import AccessLogMiddleware
from medchat.platform.embedded import SERVE_PID_VARIABLE, stop_when_orphaned
from medchat.platform.health import health_handlers
from medchat.platform.instances import repeat_every
from medchat.platform.metrics_dir import mark_this_process_dead
from medchat.platform.openapi import SECURITY_COMPONENTS
from medchat.platform.problems import exception_handlers
from medchat.platform.registry import STATE_KEY as SERVICES_STATE_KEY
from medchat.platform.requests import TRUSTED_PROXIES_STATE_KEY, client_ip, parse_networks
from medchat.platform.security import security_headers
from medchat.platform.telemetry import MetricsController, opentelemetry_config, prometheus_config
from medchat.platform.web import static_files_router, template_config
from medchat.runtime import Runtime
from medchat.settings import Settings
from medchat.worker import supervise_embedded_worker

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.load()
    configure_process_logging(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings)
        app.state.runtime = runtime
        app.state[SERVICES_STATE_KEY] = runtime.services
        app.state.readiness = runtime.readiness
        background: list[asyncio.Task[None]] = [
            asyncio.create_task(
                repeat_every(settings.orphan_sweep_seconds, runtime.sweep_orphans, name="orphan sweep"),
                name="orphan-sweep",
            )
        ]
        if settings.any_store_embedded:
            background.append(asyncio.create_task(supervise_embedded_worker(runtime), name="embedded-arq-worker"))
        if SERVE_PID_VARIABLE in os.environ:
            background.append(asyncio.create_task(stop_when_orphaned(int(os.environ[SERVE_PID_VARIABLE]))))
        log.info("medchat ready", embedded=settings.any_store_embedded, data_dir=str(settings.data_dir))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()
            mark_this_process_dead()

    cors = CORSConfig(allow_origins=settings.cors_origins, allow_credentials=True) if settings.cors_origins else None
    return Litestar(
        route_handlers=[
            *health_handlers,
            MetricsController,
            static_files_router,
            auth.router,
            chat.router,
            retrieval.router,
        ],
        lifespan=[lifespan],
        dependencies={"client_ip": Provide(client_ip, sync_to_thread=False)},
        state=State({TRUSTED_PROXIES_STATE_KEY: parse_networks(settings.trusted_proxies)}),
        plugins=[HTMXPlugin(), OpenTelemetryPlugin(opentelemetry_config()), auth.AuthPlugin(settings)],
        middleware=[AccessLogMiddleware(secret_key=settings.signing_key), prometheus_config.middleware],
        before_send=[security_headers(hsts=settings.secure_cookies)],
        template_config=template_config(),
        exception_handlers=exception_handlers,
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="medchat API",
            version=__version__,
            description="Grounded medical question answering with citations.",
            path="/schema",
            components=SECURITY_COMPONENTS,
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,
        debug=False,
    )

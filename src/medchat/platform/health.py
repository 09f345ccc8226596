"""Liveness and readiness: ``/ping``, ``/healthz`` and ``/readyz`` (which really pings each store)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from litestar import Response, get
from litestar.datastructures import State

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[object]]
"""Raises (or returns ``False``) when the dependency does not answer."""

CHECK_TIMEOUT_SECONDS = 3.0


class ReadinessChecks:
    """Named dependency checks, run concurrently, each with its own timeout."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def run(self) -> dict[str, str]:
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run_one(name) for name in names))
        return dict(zip(names, outcomes, strict=True))

    async def _run_one(self, name: str) -> str:
        try:
            answer = await asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return "timeout"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported by name
            log.warning("readiness check failed", check=name, error=str(error))
            return "error"
        return "error" if answer is False else "ok"


@get("/ping", include_in_schema=True, tags=["operations"], exclude_from_auth=True, sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"status": "ok"}


@get("/healthz", tags=["operations"], exclude_from_auth=True, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok"}


@get("/readyz", tags=["operations"], exclude_from_auth=True)
async def readyz(state: State) -> Response[dict[str, object]]:
    """Readiness: 200 when every dependency answers, else 503 naming the failing ones."""
    checks = await state.readiness.run()
    ready = all(outcome == "ok" for outcome in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


health_handlers = [ping, healthz, readyz]

"""Liveness and readiness: ``/ping``, ``/healthz`` and ``/readyz`` (which really pings each store).

Readiness covers medchat's own stores. An outside service the product can do without for a while (the
language model: sign-in, history and documents work without it) is an *optional* check: ``/readyz``
lists it in ``checks`` and names it under ``optional``, the gauge ``medchat_<name>_available`` follows it,
and readiness stays 200, so an outage there never takes every web pod out of the load balancer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[object]]
"""Raises (or returns ``False``) when the dependency does not answer."""

CHECK_TIMEOUT_SECONDS = 3.0

_availability_gauges: dict[str, Gauge] = {}


def availability_gauge(name: str) -> Gauge:
    """``medchat_<name>_available``: 1 when the optional dependency answered its last check, else 0."""
    if name not in _availability_gauges:
        _availability_gauges[name] = Gauge(
            f"medchat_{name}_available",
            f"1 when {name} answered its last readiness check, else 0 (it does not gate readiness)",
            # Several processes per pod: each exports the last check it ran, or 0 if it ran none yet, so the
            # pod's value is the best of them (livemin said "unavailable" while any process had not checked).
            multiprocess_mode="livemax",
        )
    return _availability_gauges[name]


class ReadinessChecks:
    """Named dependency checks, run concurrently, each with its own timeout."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._optional: set[str] = set()

    def add(self, name: str, check: Check, *, optional: bool = False) -> None:
        """``optional``: reported (and exported as a gauge) but never making the process unready."""
        self._checks[name] = check
        if optional:
            self._optional.add(name)
            availability_gauge(name)

    def is_optional(self, name: str) -> bool:
        return name in self._optional

    async def run(self) -> dict[str, str]:
        """Every check's outcome by name (``ok``, ``error`` or ``timeout``), optional ones included."""
        names = list(self._checks)
        outcomes = dict(zip(names, await asyncio.gather(*(self._run_one(name) for name in names)), strict=True))
        for name in self._optional:
            availability_gauge(name).set(1 if outcomes[name] == "ok" else 0)
        return outcomes

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
    """Readiness: 200 when every store answers, else 503 naming the failing ones. Every check is listed in
    ``checks``; the optional ones (the language model), also named in ``optional``, never make it 503."""
    readiness: ReadinessChecks = state.readiness
    checks = await readiness.run()
    optional = sorted(name for name in checks if readiness.is_optional(name))
    ready = all(outcome == "ok" for name, outcome in checks.items() if name not in optional)
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks, "optional": optional},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


health_handlers = [ping, healthz, readyz]

"""The process's long-lived services, looked up by type.

The runtime builds each service once and registers it; each module's ``deps.py`` turns a lookup into
a typed Litestar dependency, so handlers (and the auth middleware) reach services one way.
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar.datastructures import State

T = TypeVar("T")

STATE_KEY = "services"


class ServiceRegistry:
    def __init__(self) -> None:
        self._services: dict[type, Any] = {}

    def register(self, service: T, *, as_type: type[T] | None = None) -> T:
        self._services[as_type or type(service)] = service
        return service

    def get(self, kind: type[T]) -> T:
        try:
            return self._services[kind]
        except KeyError:
            raise LookupError(f"no {kind.__qualname__} is registered in this process") from None


def registry_of(state: State) -> ServiceRegistry:
    """The registry the app's lifespan put in ``app.state``."""
    return state[STATE_KEY]

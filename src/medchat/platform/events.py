"""In-process domain events: a module announces what happened; other modules react, unknown to it.

``auth`` publishes ``user.deleted`` without importing ``chat`` or ``retrieval``; they subscribe when the
app composes them. Handlers are awaited in order, so the publisher knows the work is done.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Handler = Callable[..., Awaitable[Any]]

USER_DELETED = "user.deleted"
"""Payload: ``user_id: str``. Every module deletes what it holds for that user."""
USER_EXPORT_REQUESTED = "user.export"
"""Payload: ``user_id: str``. Handlers return a JSON-able dict: the module's share of the user's data."""


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, event: str, handler: Handler) -> None:
        if handler not in self._handlers[event]:
            self._handlers[event].append(handler)

    async def publish(self, event: str, **payload: Any) -> list[Any]:
        """Await every handler of ``event`` in subscription order and return their results."""
        results = []
        for handler in self._handlers[event]:
            log.debug("event", event_name=event, handler=handler.__qualname__)
            results.append(await handler(**payload))
        return results

"""The audit log: who read, created, exported or deleted what, when, and from where.

It never stores message or document text: ``record(..., content=...)`` keeps only a SHA-256 of it, so
an auditor can prove what was seen without the log becoming a second copy of health data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beanie import Document
from pydantic import Field
from pymongo import DESCENDING, IndexModel

from medchat.platform.clock import utcnow
from medchat.platform.pagination import Page, paginate


class AuditEvent(Document):
    at: datetime = Field(default_factory=utcnow)
    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str | None = None
    ip: str | None = None
    content_sha256: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    class Settings:
        name = "audit_events"
        indexes = [  # noqa: RUF012 - Beanie reads this class attribute
            IndexModel([("at", DESCENDING)]),
            IndexModel([("actor_id", 1), ("at", DESCENDING)]),
            IndexModel([("resource_type", 1), ("resource_id", 1)]),
        ]


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: datetime
    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    content_sha256: str | None
    details: dict[str, Any]


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def event(
    action: str,
    *,
    actor_id: str | None,
    resource_type: str,
    resource_id: str | None = None,
    ip: str | None = None,
    content: str | None = None,
    **details: Any,
) -> AuditEvent:
    """One event, not yet stored. ``details`` must not carry health data: ids, counts, formats only."""
    return AuditEvent(
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        ip=ip,
        content_sha256=content_hash(content) if content is not None else None,
        details=details,
    )


async def record(action: str, **fields: Any) -> None:
    """Append one event (``event``'s arguments)."""
    await event(action, **fields).insert()


async def record_all(events: list[AuditEvent]) -> None:
    """Append several events in one write (those of one action, e.g. a new conversation and its question)."""
    if events:
        await AuditEvent.insert_many(events)


async def query(
    *,
    actor_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AuditEntry]:
    """Newest first; ``cursor`` is the previous page's ``next_cursor`` (opaque)."""
    criteria: dict[str, Any] = {}
    for field, value in (
        ("actor_id", actor_id),
        ("action", action),
        ("resource_type", resource_type),
        ("resource_id", resource_id),
    ):
        if value:
            criteria[field] = value
    return (await paginate(AuditEvent, criteria, limit=limit, cursor=cursor)).map(_entry)


async def purge_older_than(days: int) -> int:
    """Delete events older than the retention period; returns how many went."""
    cutoff = utcnow() - timedelta(days=days)
    result = await AuditEvent.find({"at": {"$lt": cutoff}}).delete()
    return result.deleted_count if result is not None else 0


def _entry(event: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=str(event.id),
        at=event.at,
        actor_id=event.actor_id,
        action=event.action,
        resource_type=event.resource_type,
        resource_id=event.resource_id,
        ip=event.ip,
        content_sha256=event.content_sha256,
        details=event.details,
    )

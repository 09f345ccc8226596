"""The audit log for administrators: ``GET /api/v1/audit`` (API.md) and the ``/admin/audit`` page.

The events themselves are recorded by every module into ``medchat.platform.audit``; this is the admin
area's window on them, newest first, filtered by actor, action and resource. The page shows who each
actor is (auth knows the accounts); the log itself holds ids, addresses and content hashes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate

from medchat.auth.guards import require_admin
from medchat.auth.services import Accounts
from medchat.platform import audit
from medchat.platform.errors import NotFound
from medchat.platform.openapi import BEARER, problem_responses
from medchat.platform.web import page_or_fragment

PAGE_SIZE = 50
ACTIONS = ["read", "create", "update", "export", "delete", "login", "login_failed", "register"]
RESOURCE_TYPES = ["conversation", "message", "document", "user", "api_key"]
_NOBODY = "-"
"""An actor id no event has: what an unknown email filters by, so the page shows nothing rather than all."""


class AuditEventOut(msgspec.Struct, kw_only=True):
    id: str
    at: datetime
    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    content_sha256: str | None
    details: dict[str, Any]


class AuditPageOut(msgspec.Struct, kw_only=True):
    items: list[AuditEventOut]
    next_cursor: str | None


def event_out(entry: audit.AuditEntry) -> AuditEventOut:
    return AuditEventOut(
        id=entry.id,
        at=entry.at,
        actor_id=entry.actor_id,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        ip=entry.ip,
        content_sha256=entry.content_sha256,
        details=entry.details,
    )


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = BEARER
    guards = [require_admin]  # noqa: RUF012

    @get("/", summary="Audit events, newest first (admin)", responses=problem_responses(400, 401, 403, 503))
    async def list_events(
        self,
        *,
        actor_id: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        resource_type: FromQuery[str | None] = None,
        resource_id: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = PAGE_SIZE,
        cursor: FromQuery[str | None] = None,
    ) -> AuditPageOut:
        """Who read, created, updated, exported or deleted what, signed in (or failed to), from where.

        ``content_sha256`` is the SHA-256 of the text involved (a question, an export), never the text.
        """
        page = await audit.query(
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            limit=limit,
            cursor=cursor,
        )
        return AuditPageOut(items=[event_out(item) for item in page.items], next_cursor=page.next_cursor)


class AuditPages(Controller):
    path = "/admin/audit"
    guards = [require_admin]  # noqa: RUF012
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def events(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        *,
        actor: FromQuery[str] = "",
        action: FromQuery[str] = "",
        resource_type: FromQuery[str] = "",
        resource_id: FromQuery[str] = "",
        cursor: FromQuery[str | None] = None,
    ) -> HTMXTemplate:
        """The log with filters; the filter form and "More events" ask for rows only (HTMX)."""
        actor_id = await _actor_id(accounts, actor.strip())
        page = await audit.query(
            actor_id=actor_id,
            action=action or None,
            resource_type=resource_type or None,
            resource_id=resource_id.strip() or None,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        filters = {"actor": actor, "action": action, "resource_type": resource_type, "resource_id": resource_id}
        context = {
            "events": page.items,
            "next_cursor": page.next_cursor,
            "filters": filters,
            "actions": ACTIONS,
            "resource_types": RESOURCE_TYPES,
            "actors": await accounts.emails_by_id({event.actor_id for event in page.items if event.actor_id}),
        }
        return page_or_fragment(
            request, page="auth/admin_audit.html", fragment="auth/_audit_rows.html", context=context
        )


async def _actor_id(accounts: Accounts, actor: str) -> str | None:
    """The filter's actor: an account's email, or an id as stored (a user id, ``cli``)."""
    if not actor:
        return None
    if "@" not in actor:
        return actor
    try:
        return (await accounts.find_by_email(actor)).id
    except NotFound:
        return _NOBODY

"""The audit log for administrators: ``GET /api/v1/audit`` (API.md) and the ``/admin/audit`` page.

The events themselves are recorded by every module into ``medchat.platform.audit``; this is the admin
area's window on them, newest first, filtered by actor, action and resource. The page shows who each
actor is (auth knows the accounts); the log itself holds ids, addresses and content hashes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from beanie import PydanticObjectId
from bson.errors import InvalidId
from litestar import Controller, MediaType, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate

from medchat.auth.guards import require_admin
from medchat.auth.models import User
from medchat.auth.services import Accounts
from medchat.platform import audit
from medchat.platform.errors import NotFound

PAGE_SIZE = 50
ACTIONS = ["read", "create", "update", "export", "delete", "login", "login_failed", "register"]
RESOURCE_TYPES = ["conversation", "message", "document", "user"]
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
    guards = [require_admin]  # noqa: RUF012

    @get("/", summary="Audit events, newest first (admin)")
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
            "actors": await _actor_names(page.items),
        }
        wants_rows = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
        template = "auth/_audit_rows.html" if wants_rows else "auth/admin_audit.html"
        return HTMXTemplate(template_name=template, context=context, headers={"Vary": "HX-Request"})


async def _actor_id(accounts: Accounts, actor: str) -> str | None:
    """The filter's actor: an account's email, or an id as stored (a user id, ``cli``)."""
    if not actor:
        return None
    if "@" not in actor:
        return actor
    try:
        return str((await accounts.find_by_email(actor)).id)
    except NotFound:
        return _NOBODY


async def _actor_names(events: list[audit.AuditEntry]) -> dict[str, str]:
    """Actor id -> email, for the accounts that still exist (one read for the page)."""
    ids: list[PydanticObjectId] = []
    for actor_id in {event.actor_id for event in events if event.actor_id}:
        try:
            ids.append(PydanticObjectId(actor_id))
        except (InvalidId, TypeError):
            continue
    if not ids:
        return {}
    users = await User.find({"_id": {"$in": ids}}).to_list()
    return {str(user.id): user.email for user in users}

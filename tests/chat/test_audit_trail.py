"""The audit trail of conversations: who read, created, renamed, exported or deleted which one, when and
from where, as admins see it over ``GET /api/v1/audit`` and on ``/admin/audit``; hashes, never text."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.chat.schemas import MessageCreate
from medchat.chat.services import ConversationService
from medchat.platform import audit
from medchat.runtime import Runtime
from tests.support.accounts import RegisteredUser, RegisterUser, sign_in

API = "/api/v1/chat"
QUESTION = "My blood pressure was 160/100 this morning, is that dangerous?"


async def audit_events(
    client: AsyncTestClient[Litestar], admin: RegisteredUser, **filters: str
) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params=filters, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_an_owners_read_and_an_admins_export_are_in_the_audit_log_api_and_page(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    owner = await register_user(client)
    admin = await register_admin(client)
    turn = (await client.post(f"{API}/messages", json={"content": QUESTION}, headers=owner.headers)).json()
    conversation_id = turn["conversation_id"]

    assert (await client.get(f"{API}/conversations/{conversation_id}", headers=owner.headers)).status_code == 200
    await sign_in(client, owner.email, owner.password)
    assert (await client.get(f"/chat/{conversation_id}")).status_code == 200  # opened in the UI
    exported = await client.get(f"/api/v1/users/{owner.id}/export", headers=admin.headers)
    assert exported.status_code == 200 and exported.json()["chat"]["conversations"]

    reads = await audit_events(client, admin, action="read", resource_type="conversation")
    assert [(e["actor_id"], e["resource_id"]) for e in reads] == [(owner.id, conversation_id)] * 2
    assert all(e["ip"] and e["at"] for e in reads)
    exports = await audit_events(client, admin, actor_id=admin.id, action="export")
    assert [(e["resource_type"], e["resource_id"]) for e in exports] == [("user", owner.id)]

    created = await audit_events(client, admin, actor_id=owner.id, action="create")
    assert {(e["resource_type"], e["resource_id"]) for e in created} == {
        ("conversation", conversation_id),
        ("message", turn["user_message"]["id"]),
    }
    message_event = next(e for e in created if e["resource_type"] == "message")
    assert message_event["content_sha256"] == hashlib.sha256(QUESTION.encode()).hexdigest()
    everything = json.dumps(await audit_events(client, admin, limit="200"))
    assert "160/100" not in everything and "dangerous" not in everything, "the log holds hashes, not text"

    assert (await client.get("/api/v1/audit", headers=owner.headers)).status_code == 403
    assert (await client.get("/api/v1/audit")).status_code == 401

    await sign_in(client, admin.email, admin.password)
    page = await client.get("/admin/audit")
    assert page.status_code == 200
    assert '<a href="/admin/audit" aria-current="page">Audit log</a>' in page.text
    rows = page.text.split('id="audit-rows"', 1)[1]
    read_row = next(row for row in rows.split("<tr ")[1:] if 'data-action="read"' in row)
    assert owner.email in read_row and conversation_id in read_row
    export_row = next(row for row in rows.split("<tr ")[1:] if 'data-action="export"' in row)
    assert admin.email in export_row and owner.id in export_row

    filtered = await client.get(
        "/admin/audit", params={"actor": admin.email, "action": "export"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in filtered.text, "the filter form asks for rows only"
    assert filtered.text.count("<tr id=") == 1 and 'data-action="export"' in filtered.text
    assert "/admin/audit" in (await client.get("/admin/users")).text, "linked from the admin area"


async def test_rename_export_and_delete_of_a_conversation_are_audited(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    owner = await register_user(client)
    admin = await register_admin(client)
    created = await client.post(f"{API}/conversations", json={"title": "Lipids"}, headers=owner.headers)
    conversation_id = created.json()["id"]
    await client.patch(f"{API}/conversations/{conversation_id}", json={"title": "Statins"}, headers=owner.headers)
    export = await client.get(f"{API}/conversations/{conversation_id}/export?format=md", headers=owner.headers)
    await client.delete(f"{API}/conversations/{conversation_id}", headers=owner.headers)

    events = await audit_events(client, admin, actor_id=owner.id, resource_type="conversation")
    assert [e["action"] for e in events] == ["delete", "export", "update", "create"], "newest first"
    assert all(e["resource_id"] == conversation_id for e in events)
    exported = events[1]
    assert exported["details"] == {"format": "md"}
    assert exported["content_sha256"] == hashlib.sha256(export.text.encode()).hexdigest()
    assert events[2]["details"] == {"field": "title"}


@dataclass(frozen=True)
class Caller:
    id: str
    is_admin: bool = False


async def test_reads_and_writes_outside_http_are_audited_by_the_services(runtime: Runtime) -> None:
    """A CLI command or a job leaves the same trail as the API and the pages: the services record it."""
    service = ConversationService()
    owner = Caller(f"owner-{uuid.uuid4().hex[:8]}")
    conversation_id = (await service.create(owner.id, title="Lipids")).id
    await service.detail(owner.id, conversation_id)
    await service.graph(owner.id, conversation_id, actor="cli")
    exported = await service.export(owner.id, conversation_id, format="json", actor="cli")

    trail = await audit.query(resource_type="conversation", resource_id=conversation_id)
    assert [(e.action, e.actor_id, e.ip, e.details) for e in reversed(trail.items)] == [
        ("create", owner.id, None, {}),
        ("read", owner.id, None, {}),
        ("read", "cli", None, {"view": "graph"}),
        ("export", "cli", None, {"format": "json"}),
    ]
    assert trail.items[0].content_sha256 == hashlib.sha256(exported.body.encode()).hexdigest()

    assert runtime.chat_engine is not None
    run = await runtime.chat_engine.ask(owner, MessageCreate(content=QUESTION), ip="10.0.0.7")
    await run.wait()
    created = await audit.query(actor_id=owner.id, action="create")
    assert {(e.resource_type, e.resource_id, e.ip) for e in created.items[:2]} == {
        ("conversation", run.meta.conversation.id, "10.0.0.7"),
        ("message", run.meta.user_message.id, "10.0.0.7"),
    }

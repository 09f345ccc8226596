from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medchat.platform import audit
from medchat.runtime import Runtime


async def test_audit_keeps_a_hash_never_the_text(runtime: Runtime) -> None:
    await audit.record(
        "read",
        actor_id="u1",
        resource_type="conversation",
        resource_id="c1",
        ip="10.0.0.1",
        content="my phone is 0770 900 123",
    )
    page = await audit.query(actor_id="u1")
    assert len(page.items) == 1
    entry = page.items[0]
    assert (entry.action, entry.resource_type, entry.resource_id, entry.ip) == (
        "read",
        "conversation",
        "c1",
        "10.0.0.1",
    )
    assert entry.content_sha256 == audit.content_hash("my phone is 0770 900 123")
    stored = await audit.AuditEvent.find_one({"actor_id": "u1"})
    assert "0770" not in stored.model_dump_json()


async def test_audit_filters_and_pages_newest_first(runtime: Runtime) -> None:
    for number in range(5):
        await audit.record(
            "export" if number % 2 else "read", actor_id="a", resource_type="conversation", resource_id=f"c{number}"
        )
    first = await audit.query(actor_id="a", limit=2)
    assert [entry.resource_id for entry in first.items] == ["c4", "c3"]
    second = await audit.query(actor_id="a", limit=2, cursor=first.next_cursor)
    assert [entry.resource_id for entry in second.items] == ["c2", "c1"]
    exports = await audit.query(action="export")
    assert {entry.resource_id for entry in exports.items} == {"c1", "c3"}


async def test_retention_purges_only_old_events(runtime: Runtime) -> None:
    await audit.AuditEvent(
        actor_id="x", action="read", resource_type="document", at=datetime.now(UTC) - timedelta(days=400)
    ).insert()
    await audit.record("read", actor_id="x", resource_type="document")
    assert await audit.purge_older_than(365) == 1
    assert len((await audit.query(actor_id="x")).items) == 1

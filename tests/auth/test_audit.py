"""Account events in the audit log: sign-ins (and failed ones, without the password), registrations and
administrators' changes, as ``GET /api/v1/audit`` returns them."""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.auth import audit as admin_audit
from tests.support.accounts import TEST_PASSWORD, RegisteredUser, RegisterUser, post_form, sign_in


async def events(client: AsyncTestClient[Litestar], admin: RegisteredUser, **filters: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params=filters, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_sign_ins_failed_sign_ins_and_registrations_are_recorded_without_passwords(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    admin = await register_admin(client)
    user = await register_user(client)
    wrong = "not the right password at all 1"
    assert (await client.post("/api/v1/auth/login", json={"email": user.email, "password": wrong})).status_code == 401
    unknown = {"email": "nobody@example.org", "password": wrong}
    assert (await client.post("/api/v1/auth/login", json=unknown)).status_code == 401
    assert (await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})).is_success
    form = await post_form(client, "/login", {"email": user.email, "password": user.password}, follow_redirects=False)
    assert form.status_code == 303

    registered = await events(client, admin, action="register", actor_id=user.id)
    assert [(e["resource_type"], e["resource_id"]) for e in registered] == [("user", user.id)]
    logins = await events(client, admin, action="login", actor_id=user.id)
    assert len(logins) == 2 and all(e["ip"] for e in logins), "the API and the form"
    failed = await events(client, admin, action="login_failed")
    by_reason = {e["details"]["reason"]: e for e in failed}
    assert set(by_reason) == {"wrong_password", "unknown_email"}
    assert by_reason["wrong_password"]["actor_id"] == user.id
    assert by_reason["unknown_email"]["actor_id"] is None
    assert by_reason["unknown_email"]["content_sha256"] == hashlib.sha256(b"nobody@example.org").hexdigest()
    everything = json.dumps(await events(client, admin, limit="200"))
    assert wrong not in everything and TEST_PASSWORD not in everything
    assert "nobody@example.org" not in everything


async def test_administrators_changes_and_exports_are_recorded_with_the_admin_as_actor(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    admin = await register_admin(client)
    user = await register_user(client)
    await client.patch(f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=admin.headers)
    await client.patch(f"/api/v1/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert (await client.get("/api/v1/users/me/export", headers=admin.headers)).status_code == 200
    assert (await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)).status_code == 204

    done = await events(client, admin, actor_id=admin.id, resource_type="user")
    assert [(e["action"], e["resource_id"], e["details"]) for e in done] == [
        ("delete", user.id, {}),
        ("export", admin.id, {}),
        ("update", user.id, {"disabled": True}),
        ("update", user.id, {"role": "admin"}),
        ("register", admin.id, {}),
    ]
    assert all(e["ip"] for e in done)

    first = await client.get("/api/v1/audit", params={"limit": "2"}, headers=admin.headers)
    page, cursor = first.json()["items"], first.json()["next_cursor"]
    assert len(page) == 2 and cursor, "an opaque cursor to the next page"
    more = await client.get("/api/v1/audit", params={"limit": "2", "cursor": cursor}, headers=admin.headers)
    assert more.status_code == 200
    assert {e["id"] for e in more.json()["items"]}.isdisjoint({e["id"] for e in page}), "cursor pages move on"
    bad = await client.get("/api/v1/audit", params={"cursor": "nonsense"}, headers=admin.headers)
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"


async def test_the_admin_page_pages_through_the_log_with_its_filters(
    client: AsyncTestClient[Litestar],
    register_user: RegisterUser,
    register_admin: RegisterUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_audit, "PAGE_SIZE", 2)
    admin = await register_admin(client)
    user = await register_user(client)
    for _ in range(3):
        await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    await sign_in(client, admin.email, admin.password)

    page = await client.get("/admin/audit", params={"actor": user.email, "action": "login"})
    assert page.status_code == 200
    assert page.text.count('data-action="login"') == 2
    more = re.search(r'hx-get="(/admin/audit\?[^"]+)"', page.text)
    assert more, "a link to the next events"
    link = html.unescape(more.group(1))
    assert f"actor={user.email.replace('@', '%40')}" in link and "action=login" in link, "the filters are kept"
    rest = await client.get(link, headers={"HX-Request": "true"})
    assert rest.text.count('data-action="login"') == 1
    assert "More events" not in rest.text

    nobody = await client.get("/admin/audit", params={"actor": "nobody@example.org"})
    assert "No events match these filters." in nobody.text
    await sign_in(client, user.email, user.password)
    assert (await client.get("/admin/audit", headers={"Accept": "text/html"})).status_code == 403

"""Personal API keys against real MongoDB and Redis: the JSON API, the profile page, and ``require_api_key``
on a ``/v1/`` route (a test-only one: the real ``/v1`` routes belong to the chat module)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from beanie import PydanticObjectId
from litestar import HttpMethod, Litestar, Request, route
from litestar.testing import AsyncTestClient
from pymongo import MongoClient

from medchat.auth import Principal, require_api_key
from medchat.settings import Settings
from tests.support.accounts import RegisteredUser, RegisterUser, post_form, sign_in
from tests.support.app import AppFactory

PROBE = "/v1/test-only/whoami"
KEY_SHAPE = re.compile(r"^mck_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43,}$")


@route(
    PROBE,
    http_method=[HttpMethod.GET, HttpMethod.POST],
    guards=[require_api_key],
    status_code=200,
    include_in_schema=False,
)
async def whoami(request: Request[Any, Any, Any]) -> dict[str, Any]:
    user = request.user
    assert isinstance(user, Principal)
    return {"id": user.id, "api_key_id": user.api_key_id}


def with_probe(client: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    client.app.register(whoami)
    return client


@pytest.fixture
def api_keys_collection(settings: Settings) -> Any:
    with MongoClient(settings.mongodb_uri, tz_aware=True) as mongo:
        yield mongo[settings.mongodb_database]["auth_api_keys"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(client: AsyncTestClient[Litestar], user: RegisteredUser, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/users/me/api-keys", json={"name": "laptop", **body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_create_list_revoke_and_the_key_is_shown_once_and_stored_hashed(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, api_keys_collection: Any
) -> None:
    with_probe(client)
    user = await register_user(client)
    made = await create_key(client, user, name="  my   laptop ", expires_in_days=30)
    assert KEY_SHAPE.match(made["key"]), made["key"]
    assert made["key"].startswith(f"mck_{made['prefix']}_")
    assert made["name"] == "my laptop"
    assert set(made) == {"id", "name", "prefix", "created_at", "expires_at", "key"}
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    stored = api_keys_collection.find_one({"_id": PydanticObjectId(made["id"])})
    assert stored["key_hash"] == hashlib.sha256(made["key"].encode()).hexdigest()
    assert made["key"] not in str(stored), "only the hash is stored"

    listed = (await client.get("/api/v1/users/me/api-keys", headers=user.headers)).json()
    assert [item["id"] for item in listed] == [made["id"]]
    assert "key" not in listed[0] and "key_hash" not in listed[0]
    assert listed[0]["prefix"] == made["prefix"] and listed[0]["last_used_at"] is None

    used = await client.get(PROBE, headers=bearer(made["key"]))
    assert used.status_code == 200, used.text
    assert used.json() == {"id": user.id, "api_key_id": made["id"]}
    listed = (await client.get("/api/v1/users/me/api-keys", headers=user.headers)).json()
    assert listed[0]["last_used_at"] is not None

    revoked = await client.delete(f"/api/v1/users/me/api-keys/{made['id']}", headers=user.headers)
    assert revoked.status_code == 204, revoked.text
    assert (await client.get("/api/v1/users/me/api-keys", headers=user.headers)).json() == []
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 401
    again = await client.delete(f"/api/v1/users/me/api-keys/{made['id']}", headers=user.headers)
    problem(again, 404, "not_found")


async def test_creation_is_validated_and_limited(make_client: AppFactory, register_user: RegisterUser) -> None:
    async with make_client(api_keys_per_user=2) as client:
        user = await register_user(client)
        for body in ({"name": ""}, {"name": "x" * 101}, {"name": "ok", "expires_in_days": 0},
                     {"name": "ok", "expires_in_days": 3651}):  # fmt: skip
            response = await client.post("/api/v1/users/me/api-keys", json=body, headers=user.headers)
            problem(response, 400, "validation_failed")
        await create_key(client, user, expires_in_days=3650)
        await create_key(client, user)
        third = await client.post("/api/v1/users/me/api-keys", json={"name": "third"}, headers=user.headers)
        problem(third, 409, "too_many_api_keys")
        anonymous = await client.post("/api/v1/users/me/api-keys", json={"name": "x"})
        assert anonymous.status_code == 401


async def test_expired_and_unknown_keys_are_refused(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, api_keys_collection: Any
) -> None:
    with_probe(client)
    user = await register_user(client)
    made = await create_key(client, user, expires_in_days=1)
    tampered = made["key"][:-1] + ("A" if made["key"][-1] != "A" else "B")
    for key in (tampered, "mck_nothere0_" + "a" * 43, "not-a-key", ""):
        assert (await client.get(PROBE, headers=bearer(key))).status_code == 401, key
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 200
    api_keys_collection.update_one(
        {"_id": PydanticObjectId(made["id"])}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 401
    assert (await client.get(PROBE)).status_code == 401


async def test_another_users_key_is_not_found(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    with_probe(client)
    alice, bob = await register_user(client), await register_user(client)
    made = await create_key(client, alice)
    refused = await client.delete(f"/api/v1/users/me/api-keys/{made['id']}", headers=bob.headers)
    problem(refused, 404, "not_found")
    problem(await client.delete("/api/v1/users/me/api-keys/not-an-id", headers=bob.headers), 404, "not_found")
    assert (await client.get("/api/v1/users/me/api-keys", headers=bob.headers)).json() == []
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 200, "still alive"


async def test_admin_lists_and_revokes_any_key(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    with_probe(client)
    admin, user = await register_admin(client), await register_user(client)
    made = await create_key(client, user)
    problem(await client.get("/api/v1/admin/api-keys", headers=user.headers), 403, "forbidden")
    problem(await client.delete(f"/api/v1/admin/api-keys/{made['id']}", headers=user.headers), 403, "forbidden")

    listed = (await client.get("/api/v1/admin/api-keys", headers=admin.headers)).json()
    assert [(item["id"], item["owner_email"], item["owner_id"]) for item in listed] == [
        (made["id"], user.email, user.id)
    ]
    assert "key" not in listed[0]
    revoked = await client.delete(f"/api/v1/admin/api-keys/{made['id']}", headers=admin.headers)
    assert revoked.status_code == 204, revoked.text
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 401
    assert (await client.get("/api/v1/admin/api-keys", headers=admin.headers)).json() == []

    audit = (await client.get("/api/v1/audit?resource_type=api_key", headers=admin.headers)).json()["items"]
    assert {(event["action"], event["actor_id"]) for event in audit} == {("create", user.id), ("delete", admin.id)}


async def test_credentials_do_not_cross_between_v1_and_the_rest(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    with_probe(client)
    user = await register_user(client)
    made = await create_key(client, user)
    # A JWT access token or a session cookie does not authenticate on /v1/ ...
    assert (await client.get(PROBE, headers=user.headers)).status_code == 401
    await sign_in(client, user.email, user.password)
    assert (await client.get("/profile")).status_code == 200, "the session is good for pages"
    assert (await client.get(PROBE)).status_code == 401
    # ... and an API key authenticates nowhere but /v1/.
    client.cookies.clear()
    problem(await client.get("/api/v1/users/me", headers=bearer(made["key"])), 401, "unauthorized")
    page = await client.get("/profile", headers=bearer(made["key"]), follow_redirects=False)
    assert page.status_code in (302, 303, 401), page.status_code
    # No CSRF token is asked of /v1/ (its clients are programs, and it ignores the ambient cookie).
    posted = await client.post(PROBE, headers=bearer(made["key"]))
    assert posted.status_code == 200, posted.text


async def test_each_key_is_rate_limited_and_a_disabled_owner_is_forbidden(
    make_client: AppFactory, register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    async with make_client(api_key_requests_per_minute=2) as client:
        with_probe(client)
        admin, user = await register_admin(client), await register_user(client)
        first, second = await create_key(client, user), await create_key(client, user, name="other")
        for _ in range(2):
            assert (await client.get(PROBE, headers=bearer(first["key"]))).status_code == 200
        limited = await client.get(PROBE, headers=bearer(first["key"]))
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await client.get(PROBE, headers=bearer(second["key"]))).status_code == 200, "limits are per key"

        disabled = await client.patch(f"/api/v1/users/{user.id}", json={"disabled": True}, headers=admin.headers)
        assert disabled.status_code == 200, disabled.text
        assert (await client.get(PROBE, headers=bearer(second["key"]))).status_code == 403


async def test_export_lists_keys_and_deletion_removes_them(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, api_keys_collection: Any
) -> None:
    user = await register_user(client)
    made = await create_key(client, user)
    exported = (await client.get("/api/v1/users/me/export", headers=user.headers)).json()
    assert [(key["id"], key["prefix"]) for key in exported["api_keys"]] == [(made["id"], made["prefix"])]
    assert made["key"] not in str(exported) and "key_hash" not in str(exported)

    deleted = await client.request("DELETE", "/api/v1/users/me", json={"password": user.password}, headers=user.headers)
    assert deleted.status_code == 204, deleted.text
    assert api_keys_collection.count_documents({"owner_id": user.id}) == 0


async def test_profile_page_creates_shows_once_lists_and_revokes(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, api_keys_collection: Any
) -> None:
    with_probe(client)
    user = await register_user(client)
    await sign_in(client, user.email, user.password)
    created = await post_form(client, "/profile/api-keys", {"name": "nightly report bot", "expires_in_days": "90"})
    assert created.status_code == 200, created.text
    key = re.search(r"mck_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43,}", created.text)
    assert key, "the new key is on the page"
    assert "will not be shown again" in created.text
    assert (await client.get(PROBE, headers=bearer(key.group(0)))).status_code == 200

    page = await client.get("/profile")
    assert "nightly report bot" in page.text and key.group(0)[:12] in page.text
    assert key.group(0) not in page.text, "shown once only"

    bad = await post_form(client, "/profile/api-keys", {"name": "", "expires_in_days": ""})
    assert bad.status_code == 400 and "1 to 100 characters" in bad.text

    stored = api_keys_collection.find_one({"name": "nightly report bot"})
    revoked = await post_form(client, f"/profile/api-keys/{stored['_id']}/revoke", {}, follow_redirects=False)
    assert revoked.status_code in (200, 303), revoked.text
    assert (await client.get(PROBE, headers=bearer(key.group(0)))).status_code == 401
    assert "nightly report bot" not in (await client.get("/profile")).text


async def test_admin_page_lists_and_revokes_any_key(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    with_probe(client)
    admin, user = await register_admin(client), await register_user(client)
    made = await create_key(client, user, name="owner's robot")
    await sign_in(client, user.email, user.password)
    assert (await client.get("/admin/api-keys", follow_redirects=False)).status_code == 403
    await sign_in(client, admin.email, admin.password)
    page = await client.get("/admin/api-keys")
    assert page.status_code == 200, page.text
    assert user.email in page.text and f"mck_{made['prefix']}_" in page.text
    assert made["key"] not in page.text
    revoked = await post_form(client, f"/admin/api-keys/{made['id']}/revoke", {}, follow_redirects=False)
    assert revoked.status_code == 303, revoked.text
    assert (await client.get(PROBE, headers=bearer(made["key"]))).status_code == 401
    assert user.email not in (await client.get("/admin/api-keys")).text

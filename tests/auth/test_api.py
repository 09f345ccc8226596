"""The auth and users JSON API against real MongoDB and Redis (API.md: Auth, Users)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED
from tests.support.accounts import TEST_PASSWORD, RegisterUser, sign_in
from tests.support.app import AppFactory

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_register_login_refresh_logout(client: AsyncTestClient[Litestar]) -> None:
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": "Ada.Lovelace@Example.org", "password": TEST_PASSWORD, "full_name": "Ada Lovelace"},
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"]["email"] == "Ada.Lovelace@Example.org"
    assert body["user"]["role"] == "user", "registration never grants admin, not even to the first account"
    assert set(body["user"]) >= {"id", "email", "full_name", "role", "created_at"}

    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["full_name"] == "Ada Lovelace"

    login = await client.post(
        "/api/v1/auth/login", json={"email": "ada.lovelace@example.ORG", "password": TEST_PASSWORD}
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["user"]["id"] == body["user"]["id"]

    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    ).is_success

    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    problem(after, 401, "invalid_token")
    # The first login's family is independent: logging out of one sign-in leaves the others.
    other = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert other.status_code == 200


async def test_registration_refuses_bad_input(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    taken = await register_user(client, email="taken@example.org")
    duplicate = await client.post(
        "/api/v1/auth/register", json={"email": "TAKEN@example.org ", "password": TEST_PASSWORD}
    )
    problem(duplicate, 409, "conflict")

    bad_email = await client.post("/api/v1/auth/register", json={"email": "not-an-email", "password": TEST_PASSWORD})
    assert problem(bad_email, 400, "validation_failed")["errors"][0]["key"] == "email"

    short = await client.post("/api/v1/auth/register", json={"email": "a@example.org", "password": "short"})
    body = problem(short, 400, "validation_failed")
    assert "at least 12 characters" in body["detail"]

    common = await client.post("/api/v1/auth/register", json={"email": "b@example.org", "password": "password12345"})
    assert "too easy to guess" in problem(common, 400, "validation_failed")["detail"]

    own_email = await client.post(
        "/api/v1/auth/register", json={"email": "carol.smith@example.org", "password": "carol.smith@example.org"}
    )
    assert "email" in problem(own_email, 400, "validation_failed")["detail"]

    sneaky = await client.post(
        "/api/v1/auth/register", json={"email": "d@example.org", "password": TEST_PASSWORD, "role": "admin"}
    )
    problem(sneaky, 400, "validation_failed")
    listed = await client.post("/api/v1/auth/login", json={"email": "d@example.org", "password": TEST_PASSWORD})
    problem(listed, 401, "invalid_credentials")
    assert taken.role == "user"


async def test_registration_can_be_closed_or_limited_to_domains(make_client: AppFactory) -> None:
    async with make_client(registration="closed") as client:
        closed = await client.post("/api/v1/auth/register", json={"email": "a@example.org", "password": TEST_PASSWORD})
        problem(closed, 403, "registration_closed")
    async with make_client(registration_domains="clinic.example, @Hospital.example") as client:
        outsider = await client.post(
            "/api/v1/auth/register", json={"email": "a@gmail.example", "password": TEST_PASSWORD}
        )
        assert "@clinic.example, @hospital.example" in problem(outsider, 403, "registration_closed")["detail"]
        insider = await client.post(
            "/api/v1/auth/register", json={"email": "b@HOSPITAL.example", "password": TEST_PASSWORD}
        )
        assert insider.status_code == 201


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    wrong = await client.post("/api/v1/auth/login", json={"email": user.email, "password": "not the password 1"})
    unknown = await client.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": TEST_PASSWORD})
    assert problem(wrong, 401, "invalid_credentials") == problem(unknown, 401, "invalid_credentials")


async def test_no_token_or_a_bad_one_is_401(client: AsyncTestClient[Litestar]) -> None:
    anonymous = await client.get("/api/v1/users/me")
    problem(anonymous, 401, "unauthorized")
    garbage = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert problem(garbage, 401, "unauthorized")["detail"] == "The access token is invalid, expired or revoked."
    assert garbage.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    basic = await client.get("/api/v1/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    problem(basic, 401, "unauthorized")


async def test_public_routes_stay_open_to_anonymous_and_bad_tokens(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/", "/ping", "/login", "/register"):
        assert (await client.get(path)).status_code == 200, path
        assert (await client.get(path, headers={"Authorization": "Bearer junk"})).status_code == 200, path


async def test_the_api_ignores_the_session_cookie(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    """``/api/`` is exempt from CSRF checks, so the cookie a browser sends by itself must not authenticate there."""
    user = await register_user(client)
    await sign_in(client, user.email, user.password)
    assert (await client.get("/profile")).status_code == 200
    problem(await client.get("/api/v1/users/me"), 401, "unauthorized")


async def test_disabled_user_cannot_log_in_and_tokens_stop_working(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    admin = await register_admin(client)
    user = await register_user(client)
    patched = await client.patch(f"/api/v1/users/{user.id}", json={"disabled": True}, headers=admin.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["disabled"] is True

    problem(await client.get("/api/v1/users/me", headers=user.headers), 401, "unauthorized")
    problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, "invalid_token")
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert "disabled" in problem(login, 403, "account_disabled")["detail"]

    enabled = await client.patch(f"/api/v1/users/{user.id}", json={"disabled": False}, headers=admin.headers)
    assert enabled.json()["disabled"] is False
    problem(await client.get("/api/v1/users/me", headers=user.headers), 401, "unauthorized")  # stays revoked
    assert (await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})).is_success


async def test_non_admins_are_refused_on_admin_routes(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    other = await register_user(client)
    for method, path, body in [
        ("GET", "/api/v1/users/", None),
        ("GET", f"/api/v1/users/{other.id}", None),
        ("PATCH", f"/api/v1/users/{user.id}", {"role": "admin"}),
        ("DELETE", f"/api/v1/users/{other.id}", None),
        ("GET", f"/api/v1/users/{other.id}/export", None),
    ]:
        refused = await client.request(method, path, json=body, headers=user.headers)
        problem(refused, 403, "forbidden")
        anonymous = await client.request(method, path, json=body)
        problem(anonymous, 401, "unauthorized")
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["role"] == "user"


async def test_admin_lists_searches_and_pages_users(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    admin = await register_admin(client, full_name="Grace Admin")
    for index in range(5):
        await register_user(client, email=f"patient{index}@clinic.example", full_name=f"Patient {index}")
    first = await client.get("/api/v1/users", params={"limit": 4}, headers=admin.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["email"] for item in page["items"]] == [f"patient{i}@clinic.example" for i in (4, 3, 2, 1)]
    rest = await client.get("/api/v1/users/", params={"limit": 4, "cursor": page["next_cursor"]}, headers=admin.headers)
    assert [item["email"] for item in rest.json()["items"]][:1] == ["patient0@clinic.example"]
    assert rest.json()["next_cursor"] is None
    searched = await client.get("/api/v1/users/", params={"q": "PATIENT 3"}, headers=admin.headers)
    assert [item["full_name"] for item in searched.json()["items"]] == ["Patient 3"]
    regex_safe = await client.get("/api/v1/users/", params={"q": ".*"}, headers=admin.headers)
    assert regex_safe.json()["items"] == []
    problem(
        await client.get("/api/v1/users/", params={"cursor": "nope"}, headers=admin.headers), 400, "validation_failed"
    )
    problem(await client.get("/api/v1/users/0123456789abcdef01234567", headers=admin.headers), 404, "not_found")


async def test_promotion_and_the_last_admin(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    admin = await register_admin(client)
    user = await register_user(client)
    for change in ({"role": "user"}, {"disabled": True}):
        refused = await client.patch(f"/api/v1/users/{admin.id}", json=change, headers=admin.headers)
        assert "only enabled administrator" in problem(refused, 409, "last_admin")["detail"]
    problem(await client.delete(f"/api/v1/users/{admin.id}", headers=admin.headers), 409, "last_admin")
    problem(
        await client.request("DELETE", "/api/v1/users/me", json={"password": admin.password}, headers=admin.headers),
        409,
        "last_admin",
    )

    promoted = await client.patch(f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=admin.headers)
    assert promoted.json()["role"] == "admin"
    assert (await client.get("/api/v1/users/", headers=user.headers)).status_code == 200, "role is read per request"
    demoted = await client.patch(f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert demoted.json()["role"] == "user"
    problem(await client.get("/api/v1/users/", headers=admin.headers), 403, "forbidden")
    problem(
        await client.patch(f"/api/v1/users/{user.id}", json={"role": "root"}, headers=user.headers),
        400,
        "validation_failed",
    )


async def test_profile_name_and_password_changes(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    renamed = await client.patch("/api/v1/users/me", json={"full_name": "  Mary   Seacole "}, headers=user.headers)
    assert renamed.json()["full_name"] == "Mary Seacole"

    wrong = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": "nope nope nope", "new_password": "a brand new passphrase 7"},
        headers=user.headers,
    )
    assert problem(wrong, 400, "validation_failed")["errors"][0]["key"] == "current_password"
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": user.password, "new_password": "a brand new passphrase 7"},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    problem(await client.get("/api/v1/users/me", headers=user.headers), 401, "unauthorized")
    problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, "invalid_token")
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=fresh)).status_code == 200
    old = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    problem(old, 401, "invalid_credentials")


async def test_export_gathers_every_modules_share(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    asked: list[str] = []

    async def conversations_share(user_id: str) -> dict[str, Any]:
        asked.append(user_id)
        return {"conversations": [{"id": "c1", "title": "Migraine"}]}

    async def documents_share(user_id: str) -> dict[str, Any]:
        return {"documents": [], "user": "must not replace the profile"}

    events = client.app.state.runtime.events
    events.subscribe(USER_EXPORT_REQUESTED, conversations_share)
    events.subscribe(USER_EXPORT_REQUESTED, documents_share)
    user = await register_user(client, full_name="Exported Person")
    export = await client.get("/api/v1/users/me/export", headers=user.headers)
    assert export.status_code == 200, export.text
    data = export.json()
    assert data["user"]["email"] == user.email
    assert data["user"]["full_name"] == "Exported Person"
    assert data["conversations"] == [{"id": "c1", "title": "Migraine"}]
    assert data["documents"] == []
    assert "password_hash" not in str(data)
    assert asked == [user.id]

    admin = await register_admin(client)
    by_admin = await client.get(f"/api/v1/users/{user.id}/export", headers=admin.headers)
    assert by_admin.json()["user"]["id"] == user.id


async def test_account_deletion_publishes_user_deleted(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    deleted: list[str] = []

    async def forget(user_id: str) -> None:
        deleted.append(user_id)

    client.app.state.runtime.events.subscribe(USER_DELETED, forget)
    user = await register_user(client)
    wrong = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": "wrong password!"}, headers=user.headers
    )
    problem(wrong, 400, "validation_failed")
    assert deleted == []
    gone = await client.request("DELETE", "/api/v1/users/me", json={"password": user.password}, headers=user.headers)
    assert gone.status_code == 204, gone.text
    assert deleted == [user.id]
    problem(await client.get("/api/v1/users/me", headers=user.headers), 401, "unauthorized")
    problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401, "invalid_token")
    again = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    problem(again, 401, "invalid_credentials")

    admin = await register_admin(client)
    other = await register_user(client)
    assert (await client.delete(f"/api/v1/users/{other.id}", headers=admin.headers)).status_code == 204
    assert deleted == [user.id, other.id]
    problem(await client.get(f"/api/v1/users/{other.id}", headers=admin.headers), 404, "not_found")


async def test_cors_is_closed_by_default_and_opens_to_configured_origins(make_client: AppFactory) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with make_client() as client:
        response = await client.get("/ping", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in response.headers
        assert (
            "access-control-allow-origin" not in (await client.options("/api/v1/auth/login", headers=preflight)).headers
        )
    async with make_client(cors_origins="https://app.example") as client:
        allowed = await client.options("/api/v1/auth/login", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        simple = await client.get("/ping", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.get("/ping", headers={"Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_hsts_only_when_served_over_https(make_client: AppFactory) -> None:
    async with make_client() as client:
        assert "strict-transport-security" not in (await client.get("/ping")).headers
    async with make_client(public_url="https://medchat.example") as client:
        response = await client.get("/login")
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

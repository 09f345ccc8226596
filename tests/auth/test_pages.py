"""The HTML pages: full pages and HTMX responses, CSRF on every form, sessions in Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis import Redis

from medchat.platform.events import USER_DELETED
from medchat.settings import Settings
from tests.support.accounts import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    RegisteredUser,
    RegisterUser,
    csrf_token,
    post_form,
    sign_in,
    use_browser,
    use_session,
)
from tests.support.app import AppFactory

HTMX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


async def page(client: AsyncTestClient[Litestar], path: str) -> Any:
    """GET as a browser does: asking for HTML, not following redirects."""
    return await client.get(path, headers=HTML, follow_redirects=False)


def set_cookie_header(response: Any, name: str) -> str:
    headers = [value for key, value in response.headers.multi_items() if key == "set-cookie"]
    matching = [header for header in headers if header.startswith(f"{name}=")]
    assert matching, headers
    return matching[-1]


async def test_login_page_is_an_accessible_form(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/login")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Sign in · medchat</title>" in page.text
    assert 'name="_csrf_token" value="' in page.text
    assert '<label for="email">Email</label>' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert 'action="/login"' in page.text and 'method="post"' in page.text
    assert "X-CSRFToken" in page.text, "HTMX requests carry the token in hx-headers"
    csrf_cookie = set_cookie_header(page, "medchat_csrf")
    assert "HttpOnly" in csrf_cookie and "SameSite=lax" in csrf_cookie and "Secure" not in csrf_cookie


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"email": "a@example.org", "password": "whatever"}),
        ("/register", {"email": "a@example.org", "password": "a fine long password 1"}),
        ("/logout", {}),
        ("/profile", {"full_name": "Mallory"}),
        ("/profile/password", {"current_password": "x", "new_password": "y"}),
        ("/profile/delete", {"password": "x"}),
        ("/admin/users/0123456789abcdef01234567/role", {"role": "admin"}),
    ],
)
async def test_a_form_post_without_csrf_token_is_refused(
    client: AsyncTestClient[Litestar], path: str, data: dict[str, str]
) -> None:
    await client.get("/login")  # the browser has a CSRF cookie, but the forged form lacks the token
    refused = await client.post(path, data=data, headers={"Accept": "text/html"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    forged = await client.post(
        path, data={**data, "_csrf_token": "0" * 128}, headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert forged.status_code == 403


async def test_register_then_sign_out_and_in_through_the_forms(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    created = await post_form(
        client,
        "/register",
        {"email": "nurse@example.org", "password": "night shift on ward 7", "full_name": "Nora Nurse"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/chat"
    session = set_cookie_header(created, SESSION_COOKIE)
    assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session and "Path=/" in session
    profile = await client.get("/profile")
    assert profile.status_code == 200
    assert profile.headers["content-type"] == "text/html; charset=utf-8"
    assert "Nora Nurse" in profile.text and "nurse@example.org" in profile.text
    assert 'action="/logout"' in profile.text

    secret = client.cookies[SESSION_COOKIE]
    out = await post_form(client, "/logout", {}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert "Max-Age=0" in set_cookie_header(out, SESSION_COOKIE) or "expires=" in set_cookie_header(out, SESSION_COOKIE)
    use_session(client, secret)  # a copied cookie is useless once signed out
    assert (await page(client, "/profile")).status_code in (302, 303)

    await sign_in(client, "NURSE@example.org", "night shift on ward 7")
    assert client.cookies[SESSION_COOKIE] != secret, "every sign-in starts a new session id"
    with Redis.from_url(settings.redis_url) as redis:
        keys = redis.keys("medchat:auth:session:*")
    assert len(keys) == 1 and client.cookies[SESSION_COOKIE].encode() not in keys[0], "stored hashed"


async def test_anonymous_visits_leave_no_session(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    for path in ("/", "/login", "/register", "/login"):
        response = await client.get(path)
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    with Redis.from_url(settings.redis_url) as redis:
        assert redis.keys("medchat:auth:session:*") == []


async def test_login_form_errors_are_tied_to_the_form(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    wrong = await post_form(client, "/login", {"email": user.email, "password": "not the password", "next": "/x"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "text/html; charset=utf-8"
    assert 'role="alert" id="form-error">The email or password is not correct.' in wrong.text
    assert 'aria-describedby="form-error"' in wrong.text
    assert f'value="{user.email}"' in wrong.text, "the email is kept, the password is not"
    assert 'value="not the password"' not in wrong.text
    assert 'name="next" value="/x"' in wrong.text
    assert SESSION_COOKIE not in wrong.cookies


async def test_register_form_errors_sit_next_to_their_fields(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    weak = await post_form(client, "/register", {"email": "weak@example.org", "password": "password", "full_name": "W"})
    assert weak.status_code == 400
    assert 'aria-describedby="password-hint password-error" aria-invalid="true"' in weak.text
    assert '<ul id="password-error" class="field-error"><li>Use at least 12 characters' in weak.text
    assert 'value="weak@example.org"' in weak.text

    taken = await register_user(client)
    duplicate = await post_form(client, "/register", {"email": taken.email, "password": "a fine long password 1"})
    assert duplicate.status_code == 409
    assert 'id="email-error"' in duplicate.text and "already exists" in duplicate.text


async def test_registration_page_when_closed(make_client: AppFactory) -> None:
    async with make_client(registration="closed") as client:
        page = await client.get("/register")
        assert "Registration is closed" in page.text
        assert 'action="/register"' not in page.text
        refused = await post_form(client, "/register", {"email": "a@example.org", "password": "a fine long password 1"})
        assert refused.status_code == 403


@pytest.mark.parametrize(
    ("next_path", "lands_on"),
    [
        ("/admin/users?q=x", "/admin/users?q=x"),
        ("", "/chat"),
        ("//evil.example/phish", "/chat"),
        ("/\\evil.example", "/chat"),
        ("https://evil.example/", "/chat"),
        ("javascript:alert(1)", "/chat"),
    ],
)
async def test_after_sign_in_only_same_site_paths(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, next_path: str, lands_on: str
) -> None:
    user = await register_user(client)
    signed_in = await post_form(
        client, "/login", {"email": user.email, "password": user.password, "next": next_path}, follow_redirects=False
    )
    assert signed_in.headers["location"] == lands_on


async def test_htmx_sign_in_redirects_the_whole_page(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    signed_in = await post_form(client, "/login", {"email": user.email, "password": user.password}, headers=BOOSTED)
    assert signed_in.status_code == 200
    assert signed_in.headers["hx-redirect"] == "/chat"
    assert client.cookies.get(SESSION_COOKIE)


async def test_anonymous_pages_redirect_to_sign_in(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/profile", "/admin/users"):
        page = await client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code in (302, 303)
        assert page.headers["location"] == f"/login?next={path}"
        htmx = await client.get(path, headers=HTMX, follow_redirects=False)
        assert htmx.status_code == 204
        assert htmx.headers["hx-redirect"] == f"/login?next={path}"
    login = await client.get("/login?next=/admin/users")
    assert 'name="next" value="/admin/users"' in login.text


async def test_nav_shows_who_is_signed_in(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    assert 'href="/login">Sign in</a>' in (await client.get("/")).text
    user = await register_user(client, full_name="Ida Nav")
    await sign_in(client, user.email, user.password)
    home = await client.get("/")
    assert 'href="/profile">Ida Nav</a>' in home.text
    assert 'href="/admin/users"' not in home.text
    assert ">Sign out</button>" in home.text


async def test_profile_changes_name_and_password(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, make_client: AppFactory
) -> None:
    user = await register_user(client)
    await sign_in(client, user.email, user.password)
    renamed = await post_form(client, "/profile", {"full_name": "Mary  Seacole"})
    assert renamed.status_code == 200
    assert "Your name was saved." in renamed.text
    assert renamed.headers["content-type"] == "text/html; charset=utf-8"
    assert 'value="Mary Seacole"' in renamed.text
    assert 'href="/profile">Mary Seacole</a>' in renamed.text, "the nav already shows the new name"

    too_long = await post_form(client, "/profile", {"full_name": "x" * 200})
    assert too_long.status_code == 400
    assert 'id="full_name-error"' in too_long.text

    wrong = await post_form(
        client, "/profile/password", {"current_password": "nope", "new_password": "another fine passphrase 8"}
    )
    assert wrong.status_code == 400
    assert 'aria-describedby="current_password-error"' in wrong.text
    weak = await post_form(client, "/profile/password", {"current_password": user.password, "new_password": "abc"})
    assert 'id="new_password-error"' in weak.text

    first_browser = {"session": client.cookies[SESSION_COOKIE], "csrf": client.cookies[CSRF_COOKIE]}
    client.cookies.clear()
    await sign_in(client, user.email, user.password)  # a second browser, then back to the first one
    second_browser = client.cookies[SESSION_COOKIE]
    use_browser(client, **first_browser)
    changed = await post_form(
        client, "/profile/password", {"current_password": user.password, "new_password": "another fine passphrase 8"}
    )
    assert changed.status_code == 200
    assert "Other sessions were signed out." in changed.text
    assert client.cookies[SESSION_COOKIE] != first_browser["session"], "this browser gets a fresh session"
    assert (await client.get("/profile")).status_code == 200
    use_session(client, second_browser)
    assert (await page(client, "/profile")).status_code in (302, 303)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401


async def test_export_and_delete_from_the_profile(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    deleted: list[str] = []

    async def forget(user_id: str) -> None:
        deleted.append(user_id)

    client.app.state.runtime.events.subscribe(USER_DELETED, forget)
    user = await register_user(client)
    await sign_in(client, user.email, user.password)
    export = await client.get("/profile/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith('attachment; filename="medchat-export-')
    assert json.loads(export.content)["user"]["email"] == user.email

    wrong = await post_form(client, "/profile/delete", {"password": "not my password"})
    assert wrong.status_code == 400
    assert 'id="password-error"' in wrong.text
    assert deleted == []
    gone = await post_form(client, "/profile/delete", {"password": user.password}, follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/login?deleted=true"
    assert deleted == [user.id]
    login = await client.get("/login?deleted=true")
    assert "Your account and all its data were deleted." in login.text
    assert (await page(client, "/profile")).status_code in (302, 303)


async def admin_browser(client: AsyncTestClient[Litestar], register_admin: RegisterUser) -> RegisteredUser:
    admin = await register_admin(client, full_name="Ada Admin")
    await sign_in(client, admin.email, admin.password)
    return admin


async def test_admin_page_is_for_admins_only(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    user = await register_user(client)
    await sign_in(client, user.email, user.password)
    refused = await client.get("/admin/users", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "This needs an administrator." in refused.text
    row_action = await post_form(
        client, f"/admin/users/{user.id}/role", {"role": "admin"}, headers={"Accept": "text/html"}
    )
    assert row_action.status_code == 403
    assert (await client.get("/api/v1/users/me", headers=user.headers)).json()["role"] == "user"


async def test_admin_page_lists_and_searches(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    await register_user(client, email="florence@clinic.example", full_name="Florence N")
    await register_user(client, email="mary@clinic.example", full_name="Mary S")
    await admin_browser(client, register_admin)
    page = await client.get("/admin/users")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Users · medchat</title>" in page.text
    assert "florence@clinic.example" in page.text and "mary@clinic.example" in page.text
    assert page.headers["vary"] == "HX-Request"
    assert 'href="/admin/users">Admin</a>' in page.text

    fragment = await client.get("/admin/users", params={"q": "florence"}, headers={**HTMX, "HX-Target": "user-rows"})
    assert fragment.status_code == 200
    assert fragment.headers["content-type"] == "text/html; charset=utf-8"
    assert "<html" not in fragment.text and "<tr id=" in fragment.text
    assert "florence@clinic.example" in fragment.text and "mary@clinic.example" not in fragment.text
    empty = await client.get("/admin/users", params={"q": "zzz"}, headers=HTMX)
    assert "No accounts match" in empty.text
    boosted = await client.get("/admin/users", params={"q": "mary"}, headers=BOOSTED)
    assert "<html" in boosted.text, "a boosted navigation gets the whole page"


async def test_admin_page_loads_more_rows(
    make_client: AppFactory, register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    async with make_client(registrations_per_hour_per_address=100) as client:
        await _admin_page_loads_more_rows(client, register_user, register_admin)


async def _admin_page_loads_more_rows(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    for index in range(50):
        await register_user(client, email=f"many{index:02d}@clinic.example")
    await admin_browser(client, register_admin)
    page = await client.get("/admin/users")
    assert page.text.count('<tr id="user-') == 50
    assert "many00@clinic.example" not in page.text
    more_link = page.text.split('id="more-users"', 1)[1].split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    more = await client.get(more_link, headers={**HTMX, "HX-Target": "more-users"})
    assert "<html" not in more.text
    assert "many00@clinic.example" in more.text and 'id="more-users"' not in more.text
    restore = await client.get("/admin/users", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text, "a history restore gets the whole page"


async def test_admin_promotes_and_disables_rows_in_place(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    user = await register_user(client, email="row@clinic.example")
    await admin_browser(client, register_admin)
    promoted = await post_form(client, f"/admin/users/{user.id}/role", {"role": "admin"}, headers=HTMX)
    assert promoted.status_code == 200
    assert promoted.headers["content-type"] == "text/html; charset=utf-8"
    assert promoted.text.lstrip().startswith(f'<tr id="user-{user.id}">')
    assert ">admin</span>" in promoted.text and "Make user</button>" in promoted.text
    assert (await client.get("/api/v1/users/", headers=user.headers)).status_code == 200

    disabled = await post_form(client, f"/admin/users/{user.id}/disabled", {"disabled": "true"}, headers=HTMX)
    assert '<span class="badge failed">disabled</span>' in disabled.text and "Enable</button>" in disabled.text
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401

    plain = await post_form(client, f"/admin/users/{user.id}/disabled", {"disabled": "false"}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/admin/users", "works without JavaScript too"

    bad_role = await post_form(client, f"/admin/users/{user.id}/role", {"role": "root"}, headers=HTMX)
    assert bad_role.status_code == 400


async def test_admin_row_actions_work_without_javascript(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    """A plain form post (no JavaScript) or a boosted one (hx-boost on the body) never gets a bare row:
    a 303 back to the list, or an HX-Redirect to it; only the row's own hx-post gets the row."""
    user = await register_user(client, email="nojs@clinic.example")
    admin = await admin_browser(client, register_admin)
    for action, data in (("role", {"role": "admin"}), ("disabled", {"disabled": "true"}), ("role", {"role": "user"})):
        plain = await post_form(client, f"/admin/users/{user.id}/{action}", data, headers=HTML, follow_redirects=False)
        assert plain.status_code == 303, (action, plain.status_code, plain.text)
        assert plain.headers["location"] == "/admin/users"
        assert "<tr" not in plain.text
    boosted = await post_form(client, f"/admin/users/{user.id}/disabled", {"disabled": "false"}, headers=BOOSTED)
    assert boosted.headers["hx-redirect"] == "/admin/users" and "<tr" not in boosted.text
    listed = await client.get("/admin/users", headers=HTML)
    assert "<html" in listed.text and "nojs@clinic.example" in listed.text
    account = (await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)).json()
    assert (account["role"], account["disabled"]) == ("user", False), "every post took effect"

    removed = await post_form(client, f"/admin/users/{user.id}/delete", {}, headers=HTML, follow_redirects=False)
    assert removed.status_code == 303 and removed.headers["location"] == "/admin/users"
    assert "nojs@clinic.example" not in (await client.get("/admin/users", headers=HTML)).text


async def test_pages_vary_on_htmx_and_the_api_does_not(
    client: AsyncTestClient[Litestar], register_admin: RegisterUser
) -> None:
    admin = await admin_browser(client, register_admin)
    page = await client.get("/admin/audit", headers=HTML)
    fragment = await client.get("/admin/audit", params={"action": "login"}, headers=HTMX)
    assert "<html" in page.text and "<html" not in fragment.text and 'data-action="login"' in fragment.text
    assert page.headers["vary"] == fragment.headers["vary"] == "HX-Request"
    assert (await client.get("/login", headers=HTML)).headers["vary"] == "HX-Request"
    api = await client.get("/api/v1/users/me", headers=admin.headers)
    assert api.status_code == 200 and "HX-Request" not in api.headers.get("vary", "")


async def test_admin_cannot_remove_the_last_admin_from_the_page(
    client: AsyncTestClient[Litestar], register_admin: RegisterUser
) -> None:
    admin = await admin_browser(client, register_admin)
    refused = await post_form(client, f"/admin/users/{admin.id}/role", {"role": "user"}, headers=HTMX)
    assert refused.status_code == 409
    assert refused.headers["hx-retarget"] == "#flash"
    assert "only enabled administrator" in refused.text
    assert (await client.get("/admin/users")).status_code == 200, "still an admin"


async def test_admin_deletes_and_exports_a_user(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    user = await register_user(client, email="leaving@clinic.example")
    await admin_browser(client, register_admin)
    export = await client.get(f"/admin/users/{user.id}/export")
    assert json.loads(export.content)["user"]["email"] == "leaving@clinic.example"
    removed = await post_form(client, f"/admin/users/{user.id}/delete", {}, headers=HTMX)
    assert removed.status_code == 200 and removed.text == ""
    assert "leaving@clinic.example" not in (await client.get("/admin/users")).text


async def test_cookies_are_secure_over_https(make_client: AppFactory, register_user: RegisterUser) -> None:
    async with make_client(public_url="https://medchat.example") as client:
        user = await register_user(client)
        page = await client.get("/login")
        assert "Secure" in set_cookie_header(page, "medchat_csrf")
        signed_in = await client.post(
            "/login",
            data={"email": user.email, "password": user.password, "_csrf_token": await csrf_token(client)},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        session = set_cookie_header(signed_in, SESSION_COOKIE)
        assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session

"""CSRF tokens are bound to the session: two real sessions, and one's pair refused with the other's cookie."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import CSRF_COOKIE, SESSION_COOKIE, RegisterUser, post_form, sign_in

RENAME = "/profile/"


async def signed_in_pair(client: AsyncTestClient[Litestar], email: str, password: str) -> tuple[str, str]:
    """(session cookie, CSRF token) of a browser signed in through the form, as the next page carries them."""
    client.cookies.clear()
    await sign_in(client, email, password)
    await client.get("/profile/")
    return client.cookies[SESSION_COOKIE], client.cookies[CSRF_COOKIE]


def present(client: AsyncTestClient[Litestar], *, session: str, csrf: str) -> None:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, session)
    client.cookies.set(CSRF_COOKIE, csrf)


async def rename(client: AsyncTestClient[Litestar], token: str, name: str) -> int:
    response = await client.post(RENAME, data={"full_name": name, "_csrf_token": token})
    return response.status_code


async def test_another_sessions_csrf_pair_is_refused(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    alice = await register_user(client, full_name="Alice")
    bob = await register_user(client, full_name="Bob")
    alice_session, alice_csrf = await signed_in_pair(client, alice.email, alice.password)
    bob_session, bob_csrf = await signed_in_pair(client, bob.email, bob.password)
    assert alice_csrf != bob_csrf

    present(client, session=alice_session, csrf=bob_csrf)
    assert await rename(client, bob_csrf, "Planted by Bob") == 403

    present(client, session=alice_session, csrf=alice_csrf)
    assert await rename(client, alice_csrf, "Alice Again") == 200
    present(client, session=bob_session, csrf=bob_csrf)
    assert await rename(client, bob_csrf, "Bob Again") == 200
    names = {user["email"]: user["full_name"] for user in [
        (await client.get("/api/v1/users/me", headers=alice.headers)).json(),
        (await client.get("/api/v1/users/me", headers=bob.headers)).json(),
    ]}  # fmt: skip
    assert names == {alice.email: "Alice Again", bob.email: "Bob Again"}


async def test_an_anonymous_pair_does_not_work_once_signed_in(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    """A pair planted before the sign-in (an anonymous one) stops working when the session starts."""
    user = await register_user(client)
    await client.get("/login")
    planted = client.cookies[CSRF_COOKIE]
    await sign_in(client, user.email, user.password)
    assert client.cookies[CSRF_COOKIE] != planted, "signing in issues a token for the new session"
    session = client.cookies[SESSION_COOKIE]
    present(client, session=session, csrf=planted)
    assert await rename(client, planted, "Planted") == 403


async def test_forms_keep_working_across_sign_in_password_change_and_sign_out(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    registered = await post_form(
        client, "/register", {"email": "anonymous-form@example.org", "password": user.password, "full_name": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert registered.status_code == 303, "the anonymous register form works"
    client.cookies.clear()
    await sign_in(client, user.email, user.password)
    assert (await post_form(client, RENAME, {"full_name": "First"})).status_code == 200
    changed = await post_form(
        client, "/profile/password", {"current_password": user.password, "new_password": "a new good password 55"}
    )
    assert changed.status_code == 200, changed.text
    token_in_page = changed.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
    assert token_in_page == client.cookies[CSRF_COOKIE], "the page's forms carry the new session's token"
    assert (await client.post(RENAME, data={"full_name": "Second", "_csrf_token": token_in_page})).status_code == 200
    signed_out = await post_form(client, "/logout", {}, follow_redirects=False)
    assert signed_out.status_code == 303
    login_page = await client.get("/login")
    assert login_page.status_code == 200
    again = await post_form(
        client, "/login", {"email": user.email, "password": "a new good password 55"}, follow_redirects=False
    )
    assert again.status_code == 303, again.text

"""Accounts in tests: users registered through the real API and browser-like sign-in through the real forms.

Plain helpers only; the fixtures that use them (``register_user``, ``register_admin``, ``alice``...) live in
the conftest files.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

TEST_PASSWORD = "correct horse battery staple 42"
CSRF_COOKIE = "medchat_csrf"
SESSION_COOKIE = "medchat_session"


@dataclass(frozen=True)
class RegisteredUser:
    """An account made through the real API, with its tokens. ``headers`` authenticates API calls."""

    id: str
    email: str
    password: str
    full_name: str
    role: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


RegisterUser = Callable[..., Awaitable[RegisteredUser]]
"""The ``register_user`` / ``register_admin`` fixtures: ``await register_user(client, email=None, role="user")``."""


async def csrf_token(client: AsyncTestClient[Litestar]) -> str:
    """The CSRF token a page would embed; fetching a page sets the cookie it is checked against."""
    if not client.cookies.get(CSRF_COOKIE):
        await client.get("/login")
    return client.cookies[CSRF_COOKIE]


async def post_form(client: AsyncTestClient[Litestar], path: str, data: dict[str, str], **kwargs: Any) -> Any:
    """POST a form as the browser does: urlencoded, with the hidden CSRF field."""
    return await client.post(path, data={**data, "_csrf_token": await csrf_token(client)}, **kwargs)


async def sign_in(client: AsyncTestClient[Litestar], email: str, password: str) -> None:
    response = await post_form(client, "/login", {"email": email, "password": password}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert client.cookies.get(SESSION_COOKIE)


def use_session(client: AsyncTestClient[Litestar], secret: str | None) -> None:
    """Present ``secret`` as the session cookie (None: none at all), as another browser of the same person would."""
    domain = next((cookie.domain for cookie in client.cookies.jar if cookie.name == CSRF_COOKIE), "")
    client.cookies.delete(SESSION_COOKIE)
    if secret is not None:
        client.cookies.set(SESSION_COOKIE, secret, domain=domain)


def use_browser(client: AsyncTestClient[Litestar], *, session: str, csrf: str) -> None:
    """Present another browser's cookies: its session and the CSRF token issued to that session."""
    domain = next((cookie.domain for cookie in client.cookies.jar if cookie.name == CSRF_COOKIE), "")
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, session, domain=domain)
    client.cookies.set(CSRF_COOKIE, csrf, domain=domain)


# --- the chat tests' accounts: a user with its bearer header ---------------------------------------
PASSWORD = "a long enough test password 42"


@dataclass
class ChatUser:
    id: str
    email: str
    headers: dict[str, str]


async def register(client: AsyncTestClient[Litestar], *, name: str = "user") -> ChatUser:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.org"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": name.title()}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return ChatUser(body["user"]["id"], email, {"Authorization": f"Bearer {body['access_token']}"})


async def sign_in_browser(client: AsyncTestClient[Litestar], user: ChatUser) -> dict[str, str]:
    """Sign ``client`` in with a session cookie, as the login form does; returns the CSRF header for posts."""
    await client.get("/login")
    csrf = client.cookies.get(CSRF_COOKIE, "")
    response = await client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "_csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code in (200, 302, 303), response.text
    return {"X-CSRFToken": client.cookies.get(CSRF_COOKIE, csrf)}

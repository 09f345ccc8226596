"""Auth test helpers: a browser-like sign-in through the real forms, and apps with other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo import MongoClient

from medchat.app import create_app
from medchat.settings import Settings

CSRF_COOKIE = "medchat_csrf"
SESSION_COOKIE = "medchat_session"

AppFactory = Callable[..., AbstractAsyncContextManager[AsyncTestClient[Litestar]]]


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


@pytest.fixture
def make_client(settings: Settings) -> AppFactory:
    """``async with make_client(**overrides) as client``: an app on the test's stores with other settings."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
        own = Settings.load(**{**settings.model_dump(), **overrides})
        async with AsyncTestClient(
            app=create_app(own), base_url=overrides.get("public_url") or "http://testserver"
        ) as client:
            yield client

    return open_client


@pytest.fixture
def users_collection(settings: Settings) -> Any:
    """The users collection read directly (a second, synchronous client), to check what is really stored."""
    with MongoClient(settings.mongodb_uri, tz_aware=True) as mongo:
        yield mongo[settings.mongodb_database]["users"]

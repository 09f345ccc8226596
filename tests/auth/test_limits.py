"""Limits beyond failed sign-ins: sign-ups per address, wrong current passwords per account, and failed
sign-ins that cannot lock the owner out (the tight limit is per account *and* address)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.auth import Accounts
from medchat.platform.errors import InvalidCredentials, RateLimited
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.accounts import TEST_PASSWORD, RegisterUser, post_form, sign_in
from tests.support.app import AppFactory

STRANGER = "203.0.113.9"
OWNER = "198.51.100.7"


def refused(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1


def problem_refused(response: Any) -> None:
    refused(response)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "rate_limited"


async def register(client: AsyncTestClient[Litestar], number: int) -> Any:
    email = f"signup-{number}@example.org"
    return await client.post("/api/v1/auth/register", json={"email": email, "password": TEST_PASSWORD})


async def test_sign_ups_are_limited_per_address_on_the_api_and_the_page(make_client: AppFactory) -> None:
    async with make_client(registrations_per_hour_per_address=3) as client:
        assert [(await register(client, number)).status_code for number in range(3)] == [201] * 3
        problem_refused(await register(client, 3))
        page = await post_form(
            client, "/register", {"email": "signup-page@example.org", "password": TEST_PASSWORD, "full_name": ""}
        )
        refused(page)
        assert "Too many accounts were created from your network" in page.text
        assert "medchat_session" not in page.cookies


async def test_wrong_current_passwords_are_limited_per_account(
    make_client: AppFactory, register_user: RegisterUser
) -> None:
    async with make_client(password_failures_per_hour=3) as client:
        user = await register_user(client)
        change = {"current_password": "not my password 123", "new_password": "a brand new password 77"}
        for _ in range(3):
            response = await client.post("/api/v1/users/me/password", json=change, headers=user.headers)
            assert response.status_code == 400, response.text
        problem_refused(await client.post("/api/v1/users/me/password", json=change, headers=user.headers))
        # Deleting the account asks for the same password and shares the count; even the right one waits.
        right = await client.request(
            "DELETE", "/api/v1/users/me", json={"password": user.password}, headers=user.headers
        )
        problem_refused(right)
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200


async def test_wrong_passwords_on_the_profile_page_are_limited(
    make_client: AppFactory, register_user: RegisterUser
) -> None:
    async with make_client(password_failures_per_hour=2) as client:
        user = await register_user(client)
        await sign_in(client, user.email, user.password)
        for _ in range(2):
            page = await post_form(client, "/profile/delete", {"password": "not my password 123"})
            assert page.status_code == 400, page.text
        page = await post_form(
            client, "/profile/password", {"current_password": "wrong again 1234", "new_password": "new password 9876"}
        )
        refused(page)
        assert "Too many wrong passwords" in page.text


async def test_the_right_current_password_does_not_count(make_client: AppFactory, register_user: RegisterUser) -> None:
    async with make_client(password_failures_per_hour=1) as client:
        user = await register_user(client)
        password = user.password
        for number in range(3):
            new = f"another good password {number}0"
            change = {"current_password": password, "new_password": new}
            response = await client.post("/api/v1/users/me/password", json=change, headers=user.headers)
            assert response.status_code == 200, response.text
            user = type(user)(**{**user.__dict__, "access_token": response.json()["access_token"]})
            password = new


@pytest.fixture
async def accounts(runtime: Runtime) -> Accounts:
    return runtime.services.get(Accounts)


async def owner_account(accounts: Accounts) -> str:
    await accounts.create_user(email="owner@example.org", password=TEST_PASSWORD)
    return "owner@example.org"


async def test_a_stranger_cannot_lock_the_owner_out(accounts: Accounts) -> None:
    email = await owner_account(accounts)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate(email=email, password="a wrong guess 123", address=STRANGER)
    with pytest.raises(RateLimited):
        await accounts.authenticate(email=email, password="a wrong guess 123", address=STRANGER)
    with pytest.raises(RateLimited):
        await accounts.authenticate(email=email, password=TEST_PASSWORD, address=STRANGER)
    signed_in = await accounts.authenticate(email=email, password=TEST_PASSWORD, address=OWNER)
    assert signed_in.email == email


async def test_guessing_from_many_addresses_meets_the_account_wide_limit(settings: Settings) -> None:
    runtime = await Runtime.open(settings.model_copy(update={"login_attempts_per_minute_per_account": 8}))
    try:
        accounts = runtime.services.get(Accounts)
        email = await owner_account(accounts)
        for number in range(8):
            with pytest.raises(InvalidCredentials):
                await accounts.authenticate(email=email, password="a wrong guess 123", address=f"192.0.2.{number}")
        with pytest.raises(RateLimited):
            await accounts.authenticate(email=email, password="a wrong guess 123", address="192.0.2.200")
    finally:
        await runtime.close()


def test_the_account_wide_limit_has_much_more_room_by_default() -> None:
    fields = Settings.model_fields
    per_account, tight = fields["login_attempts_per_minute_per_account"], fields["login_attempts_per_minute"]
    assert per_account.default >= 10 * tight.default

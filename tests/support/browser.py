"""Browser-test helpers: the accounts the browser tests sign in with, making an admin as an operator does, and
signing in as a person does."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass

import httpx
from playwright.sync_api import Page, expect

from tests.support.serve import MEDCHAT, ServeProcess

BROWSER_PASSWORD = "browser test passphrase 42"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    full_name: str


@dataclass(frozen=True)
class Site:
    """A live server with an admin and a conversation of that admin, for tests that visit every page."""

    server: ServeProcess
    admin: Account
    conversation_id: str

    @property
    def base(self) -> str:
        return self.server.base_url


def sign_in_through_the_form(page: Page, base_url: str, account: Account, *, next_path: str = "") -> Page:
    """Sign in as a person does; lands on ``next_path`` (or wherever a sign-in lands by default)."""
    page.goto(f"{base_url}/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out")).to_be_visible()
    if next_path:
        expect(page).to_have_url(f"{base_url}{next_path}")
    return page


def create_admin(server: ServeProcess, *, email: str | None = None, name: str = "Ada Admin") -> Account:
    """An administrator, made as an operator makes the first one: ``medchat user create --admin`` (stdin password)."""
    email = email or f"admin-{uuid.uuid4().hex[:10]}@example.org"
    env = {key: value for key, value in server.environment().items() if key != "MEDCHAT_PORT"}
    created = subprocess.run(
        [MEDCHAT, "user", "create", "--admin", "--name", name, email],
        input=BROWSER_PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr + created.stdout
    return Account(created.stdout.rsplit("(id ", 1)[1].rstrip(")\n"), email, BROWSER_PASSWORD, name)


def bearer_headers(base_url: str, account: Account) -> dict[str, str]:
    """The API's Authorization header for ``account``, signed in through the API."""
    login = httpx.post(f"{base_url}/api/v1/auth/login", json={"email": account.email, "password": account.password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}

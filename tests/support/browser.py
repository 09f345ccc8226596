"""Browser-test helpers: the accounts the browser tests sign in with, and signing in as a person does."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import Page, expect

BROWSER_PASSWORD = "browser test passphrase 42"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    full_name: str


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

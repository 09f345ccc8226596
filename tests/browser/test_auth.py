"""Accounts in a real browser: register, sign out, sign in, rename, and an admin promoting someone in place."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.support.browser import BROWSER_PASSWORD, Account, sign_in_through_the_form

EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 40[01] ")
"""Chromium logs every 4xx response; the form errors this test provokes on purpose are not faults."""


def collect_console_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error" and not EXPECTED_REFUSAL.match(message.text):
            errors.append(message.text)

    page.on("console", keep)
    return errors


@pytest.mark.expected_console_errors(  # a too-short password, then a wrong one: refused on purpose
    r"status of 400 \(Bad Request\) \(\S*/register:", r"status of 401 \(Unauthorized\) \(\S*/login:"
)
def test_register_sign_out_sign_in_and_change_name(page: Page, base_url: str) -> None:
    errors = collect_console_errors(page)
    email = f"nurse-{uuid.uuid4().hex[:8]}@example.org"
    page.goto(f"{base_url}/")
    page.get_by_role("link", name="Create account").click()
    expect(page).to_have_title("Create account · medchat")

    page.get_by_label("Full name").fill("Nora Nurse")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Create account").click()
    password_field = page.get_by_label("Password")
    expect(password_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_contain_text("Use at least 12 characters")
    expect(page.get_by_label("Email")).to_have_value(email)

    password_field.fill(BROWSER_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base_url}/chat")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Nora Nurse").click()
    expect(page).to_have_url(f"{base_url}/profile")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Nora Nurse")).to_be_visible()

    nav.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto(f"{base_url}/profile")
    expect(page).to_have_url(re.compile(r"/login\?next=/profile$"))

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the right password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is not correct.")
    page.get_by_label("Password").fill(BROWSER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/profile")

    page.get_by_label("Full name").fill("Nora Seacole")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status").filter(has_text="Your name was saved.")).to_be_visible()
    expect(nav.get_by_role("link", name="Nora Seacole")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Full name")).to_have_value("Nora Seacole")
    assert errors == [], f"console errors (a CSP violation shows here): {errors}"


def test_session_cookie_is_http_only(signed_in_page: Page, base_url: str) -> None:
    cookies = {cookie["name"]: cookie for cookie in signed_in_page.context.cookies(base_url)}
    assert cookies["medchat_session"]["httpOnly"] is True
    assert cookies["medchat_session"]["sameSite"] == "Lax"
    assert "medchat_session" not in signed_in_page.evaluate("document.cookie")


def test_admin_promotes_a_user_in_place(page: Page, base_url: str, admin_account: Account, fresh_user: Account) -> None:
    errors = collect_console_errors(page)
    sign_in_through_the_form(page, base_url, admin_account, next_path="/profile")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin", exact=True).click()
    expect(page).to_have_url(f"{base_url}/admin/users")
    page.evaluate("window.samePage = true")  # gone if anything below reloads the page

    page.get_by_label("Search by name or email").fill(fresh_user.email)
    rows = page.locator("#user-rows tr")
    expect(rows).to_have_count(1)
    row = page.locator(f"#user-{fresh_user.id}")
    expect(row).to_contain_text(fresh_user.full_name)
    expect(row.locator(".badge")).to_have_text("user")

    row.get_by_role("button", name=f"Make admin: {fresh_user.email}").click()
    expect(row.locator(".badge")).to_have_text("admin")
    expect(row.get_by_role("button", name=f"Make user: {fresh_user.email}")).to_be_visible()
    row.get_by_role("button", name=f"Disable {fresh_user.email}").click()
    expect(row).to_contain_text("disabled")
    row.get_by_role("button", name=f"Enable {fresh_user.email}").click()
    expect(row).to_contain_text("active")
    assert page.evaluate("window.samePage") is True, "the rows changed in place"
    assert errors == [], f"console errors: {errors}"

    # The promoted person sees the admin page after signing in.
    page.context.clear_cookies()
    sign_in_through_the_form(page, base_url, fresh_user)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin", exact=True)).to_be_visible()

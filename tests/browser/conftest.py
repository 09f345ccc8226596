"""Browser tests: Playwright drives Debian's Chromium against a real ``medchat serve``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Error, Page

from tests.support.browser import BROWSER_PASSWORD, Account, create_admin, sign_in_through_the_form
from tests.support.serve import ServeProcess

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("browser") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def base_url(live_server: ServeProcess) -> str:
    return live_server.base_url


@pytest.fixture
def fresh_user(live_server: ServeProcess) -> Account:
    """A new account on the live server, registered through the API."""
    email = f"browser-{uuid.uuid4().hex[:10]}@example.org"
    full_name = f"Browser {email[8:14]}"
    response = httpx.post(
        f"{live_server.base_url}/api/v1/auth/register",
        json={"email": email, "password": BROWSER_PASSWORD, "full_name": full_name},
    )
    assert response.status_code == 201, response.text
    return Account(response.json()["user"]["id"], email, BROWSER_PASSWORD, full_name)


@pytest.fixture(scope="session")
def admin_account(live_server: ServeProcess) -> Account:
    return create_admin(live_server)


@pytest.fixture
def signed_in_page(page: Page, base_url: str, fresh_user: Account) -> Page:
    """``page`` with ``fresh_user`` signed in through the real login form (a session cookie, as a person has)."""
    return sign_in_through_the_form(page, base_url, fresh_user)


def _expected_console_errors(item: pytest.Item) -> list[re.Pattern[str]]:
    """The patterns of ``@pytest.mark.expected_console_errors(r"...", ...)`` on the test, its class and module."""
    return [re.compile(pattern) for marker in item.iter_markers("expected_console_errors") for pattern in marker.args]


@pytest.fixture(autouse=True)
def no_console_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test whose ``page`` logged a console error or threw an uncaught exception (a CSP violation, a 404
    static file, a JS error, an htmx swap error), listing them. A test that causes an error response on purpose
    names what it expects with ``@pytest.mark.expected_console_errors(r"status of 503")``.
    """
    if "page" not in request.fixturenames:
        yield
        return
    page: Page = request.getfixturevalue("page")
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location or {}
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location.get("url") else ""
            errors.append(f"console error on {message.page.url if message.page else '?'}: {message.text}{where}")

    def page_error(error: Error) -> None:
        errors.append(f"uncaught exception on {page.url}: {error.name}: {error.message}")

    page.context.on("console", console)
    page.on("pageerror", page_error)
    yield
    expected = _expected_console_errors(request.node)
    unexpected = [error for error in errors if not any(pattern.search(error) for pattern in expected)]
    assert not unexpected, f"{len(unexpected)} console error(s) in the browser:\n" + "\n".join(unexpected)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep a full-page screenshot of a failing browser test in test-results/ (the page is still open)."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        Path("test-results").mkdir(exist_ok=True)
        page.screenshot(path=str(Path("test-results") / f"{item.name}.png"), full_page=True)

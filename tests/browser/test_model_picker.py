"""Model choice in a real browser, desktop and phone: a ``medchat serve`` whose fake OpenAI-compatible model
serves two models; the composer's picker, the answer labelled with the model chosen, the choice remembered,
and the admin's page of role rules."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.accessibility import assert_accessible
from tests.support.browser import BROWSER_PASSWORD, create_admin, sign_in_through_the_form
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
FIRST, SECOND = "fake/first", "fake/second"
SECOND_LABEL = f"{SECOND} via 127.0.0.1"


def reply(body: dict[str, Any]) -> str:
    """Streamed answers say which model id the request carried; the short title request gets a title."""
    return f"Answered by **{body['model']}** for you." if body.get("stream") else "Model choice"


@pytest.fixture(scope="module")
def picker_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=reply, token_delay=0.01) as server:
        yield server


@pytest.fixture(scope="module")
def picker_server(tmp_path_factory: pytest.TempPathFactory, picker_llm: FakeLLMServer) -> Iterator[ServeProcess]:
    env = {
        "MEDCHAT_LLM_API_KEY": "test-key",
        "MEDCHAT_LLM_BASE_URL": picker_llm.base_url,
        "MEDCHAT_LLM_MODEL": FIRST,
        "MEDCHAT_LLM_MODELS": f"{FIRST},{SECOND}",
    }
    with ServeProcess(tmp_path_factory.mktemp("browser-models") / "data", extra_env=env) as server:
        yield server


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest, page: Page) -> str:
    width, height = VIEWPORTS[request.param]
    page.set_viewport_size({"width": width, "height": height})
    return str(request.param)


def register(page: Page, base: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Full name").fill("Model Chooser")
    page.get_by_label("Email").fill(f"models-{uuid.uuid4().hex[:8]}@example.org")
    page.get_by_label("Password").fill(BROWSER_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).not_to_have_url(re.compile(r"/register"))


def fits_the_screen(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_choosing_the_second_model_labels_the_answer_with_it(
    page: Page, viewport: str, picker_server: ServeProcess, picker_llm: FakeLLMServer
) -> None:
    base = picker_server.base_url
    register(page, base)
    page.goto(f"{base}/chat")
    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    expect(picker.locator("option")).to_have_count(3)  # both models and sources-only
    expect(picker).to_have_value("medchat")
    fits_the_screen(page)
    assert_accessible(page, f"chat with the model picker ({viewport})")

    picker.select_option(label=SECOND_LABEL)
    box = page.get_by_role("textbox", name="Your question")
    box.fill("What is hypertension?")
    box.press("Enter")
    answer = page.locator("article.message.assistant.complete")
    expect(answer).to_be_visible()
    expect(answer.locator("strong")).to_have_text(SECOND)
    expect(answer.locator(".model-label")).to_have_text(SECOND_LABEL)
    fits_the_screen(page)

    # The conversation keeps its model (server-side: the latest answer's), and a new chat starts with the
    # last choice (localStorage).
    page.reload()
    expect(page.get_by_label("Model", exact=True)).to_have_value(f"medchat/{SECOND}")
    expect(page.locator("article.message.assistant .model-label")).to_have_text(SECOND_LABEL)
    page.goto(f"{base}/chat")
    expect(page.get_by_label("Model", exact=True)).to_have_value(f"medchat/{SECOND}")


def test_the_admin_withholds_a_model_from_users(page: Page, viewport: str, picker_server: ServeProcess) -> None:
    base = picker_server.base_url
    admin = create_admin(picker_server, email=f"models-admin-{uuid.uuid4().hex[:8]}@example.org", name="Model Admin")
    sign_in_through_the_form(page, base, admin)
    page.goto(f"{base}/admin/users")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Models")
    fits_the_screen(page)
    assert_accessible(page, f"admin models ({viewport})")

    row = page.locator(f'tr[data-model="medchat/{SECOND}"]')
    users = row.get_by_role("checkbox", name="user")
    expect(users).to_be_checked()
    users.uncheck()
    row.get_by_role("button", name=f"Save who may use {SECOND_LABEL}").click()
    expect(page.get_by_role("status").filter(has_text=f"Saved who may use medchat/{SECOND}")).to_be_visible()
    expect(page.locator(f'tr[data-model="medchat/{SECOND}"]').get_by_role("checkbox", name="user")).not_to_be_checked()
    fits_the_screen(page)

    # A user now sees only the two other models.
    page.context.clear_cookies()
    register(page, base)
    page.goto(f"{base}/chat")
    options = page.get_by_label("Model", exact=True).locator("option")
    expect(options).to_have_count(2)
    expect(options.filter(has_text=SECOND_LABEL)).to_have_count(0)

    # Open it again for the other tests (each viewport runs this test).
    page.context.clear_cookies()
    sign_in_through_the_form(page, base, admin)
    page.goto(f"{base}/admin/models")
    row = page.locator(f'tr[data-model="medchat/{SECOND}"]')
    row.get_by_role("checkbox", name="user").check()
    row.get_by_role("button", name=f"Save who may use {SECOND_LABEL}").click()
    expect(page.locator(f'tr[data-model="medchat/{SECOND}"]').get_by_role("checkbox", name="user")).to_be_checked()

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_home_page_loads_with_styles_and_htmx(page: Page, base_url: str) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{base_url}/")
    expect(page).to_have_title("Answers from your own sources · medchat")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Medical answers")
    expect(page.get_by_role("link", name="Ask a question")).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "object", "vendored htmx loaded"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background not in ("", "rgba(0, 0, 0, 0)"), "the stylesheet applied"
    assert errors == [], f"console errors (a CSP violation shows here): {errors}"

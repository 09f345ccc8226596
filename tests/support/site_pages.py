"""Every page of the app a person can open, for the checks that must hold on all of them (accessibility, fitting
a phone). Paths with ``{conversation_id}`` need a conversation of the signed-in account.

The chat with an answer and the citation panel open, the phone drawer and the extracted-text page (the answer
to a form post) need steps, not only a path: tests/browser/test_accessibility.py visits them as well.
"""

from __future__ import annotations

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}

NOT_FOUND_PATH = "/no-such-page-here"
SIGNED_OUT_PAGES = {
    "login": "/login",
    "register": "/register",
    "not-found": NOT_FOUND_PATH,
}
SIGNED_IN_PAGES = {
    "chat-empty": "/chat",
    "chat": "/chat/{conversation_id}",
    "knowledge-base": "/documents",
    "profile": "/profile",
    "admin-users": "/admin/users",
    "audit": "/admin/audit",
    "api-keys": "/admin/api-keys",
    "not-found-signed-in": NOT_FOUND_PATH,
}
"""The admin's view of each page (an admin sees every page, and the most on each)."""

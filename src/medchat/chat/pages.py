"""The chat module's HTML pages."""

from __future__ import annotations

from litestar import get
from litestar.plugins.htmx import HTMXTemplate


@get("/", include_in_schema=False, exclude_from_auth=True)
async def home_page() -> HTMXTemplate:
    return HTMXTemplate(template_name="chat/home.html")

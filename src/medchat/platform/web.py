"""Where the Jinja2 templates and static files live, the template engine set-up, and the one rule for
serving a page or an HTMX fragment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litestar.datastructures import ResponseHeader
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from medchat import __version__

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_REPOSITORY_DIR = _PACKAGE_DIR.parents[1]


def _resource_dir(name: str) -> Path:
    """The folder shipped inside the wheel (``medchat/<name>``) or, in a checkout, the repository's."""
    for candidate in (_PACKAGE_DIR / name, _REPOSITORY_DIR / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"medchat's {name}/ folder is missing; reinstall the package")


TEMPLATES_DIR = _resource_dir("templates")
STATIC_DIR = _resource_dir("static")


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def configure(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals["version"] = __version__
        engine.engine.globals["static"] = lambda path: f"/static/{path}?v={__version__}"

    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=configure)


static_files_router = create_static_files_router(
    path="/static",
    directories=[STATIC_DIR],
    name="static",
    include_in_schema=False,
    cache_control=None,
    opt={"exclude_from_auth": True},
)


VARY_ON_HTMX = [ResponseHeader(name="Vary", value="HX-Request")]
"""Response headers for a router whose routes answer a page or a fragment for the same URL (set once
per router, so caches keep the two apart)."""


def wants_fragment(request: HTMXRequest) -> bool:
    """The one rule for page vs fragment: HTMX swapping part of a page gets the fragment; a plain
    request, a boosted link or form (which swaps the whole body) and a history restore get the page."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page_or_fragment(
    request: HTMXRequest,
    *,
    page: str,
    fragment: str,
    context: Mapping[str, Any],
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMXTemplate:
    """``fragment`` for an HTMX swap, else the whole ``page`` (which includes the same fragment)."""
    return HTMXTemplate(
        template_name=fragment if wants_fragment(request) else page,
        context=dict(context),
        status_code=status_code,
        headers=dict(headers or {}),
    )

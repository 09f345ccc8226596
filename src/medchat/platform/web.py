"""Where the Jinja2 templates and static files live, and the template engine set-up."""

from __future__ import annotations

from pathlib import Path

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

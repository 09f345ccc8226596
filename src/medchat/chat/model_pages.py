"""The admin page of models: which roles may use each configured model (``/admin/models``).

Plain forms, one per model, so it works without JavaScript; a rule that cannot be kept (it would leave a
role with no model) is shown on the page with the rules unchanged.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect

from medchat.auth import Principal
from medchat.chat.model_access import ModelAccess
from medchat.platform.errors import ClientError
from medchat.platform.identity import require_admin

MODELS_PAGE = "/admin/models"


class AdminModelPages(Controller):
    path = MODELS_PAGE
    guards = [require_admin]  # noqa: RUF012 - Litestar reads it as a class attribute
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def models(
        self, model_access: NamedDependency[ModelAccess], saved: FromQuery[str | None] = None
    ) -> HTMXTemplate:
        return await _page(model_access, saved=saved)

    @post("/", media_type=MediaType.HTML)
    async def set_roles(
        self,
        request: Request[Any, Any, Any],
        *,
        caller: NamedDependency[Principal],
        model_access: NamedDependency[ModelAccess],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        form = await request.form()
        model = str(form.get("model") or "")
        roles = [str(role) for role in form.getall("roles")] if "roles" in form else []
        try:
            await model_access.set_roles(model, roles, actor=caller.id, ip=client_ip)
        except ClientError as error:
            return await _page(model_access, error=error.detail, error_model=model, status_code=error.status)
        return Redirect(MODELS_PAGE, query_params={"saved": model}, status_code=303)


async def _page(
    model_access: ModelAccess,
    *,
    saved: str | None = None,
    error: str | None = None,
    error_model: str | None = None,
    status_code: int = 200,
) -> HTMXTemplate:
    overview = await model_access.overview()
    return HTMXTemplate(
        template_name="chat/admin_models.html",
        context={
            "roles": overview.roles,
            "models": overview.models,
            "saved": saved if saved in {model.name for model in overview.models} else None,
            "error": error,
            "error_model": error_model,
        },
        status_code=status_code,
    )

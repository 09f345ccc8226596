"""The models on the JSON API: what the caller may choose (``GET /api/v1/chat/models``), and the admin's
role rules (``/api/v1/admin/model-access``)."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from medchat.auth import Principal, require_user
from medchat.chat.model_access import (
    ModelAccess,
    ModelAccessOut,
    ModelAccessPage,
    ModelAccessUpdate,
    ModelOut,
    model_out,
)
from medchat.platform.identity import require_admin
from medchat.platform.openapi import BEARER, problem_responses


class ChatModelsController(Controller):
    path = "/api/v1/chat/models"
    tags = ["chat"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [require_user]  # noqa: RUF012
    security = BEARER

    @get("/", responses=problem_responses(401, 503))
    async def list_models(
        self, caller: NamedDependency[Principal], model_access: NamedDependency[ModelAccess]
    ) -> list[ModelOut]:
        """The models the caller may answer with (``model`` of ``POST /api/v1/chat/messages``), default first."""
        return [model_out(model) for model in await model_access.allowed(caller)]


class ModelAccessController(Controller):
    path = "/api/v1/admin/model-access"
    tags = ["admin"]  # noqa: RUF012
    guards = [require_admin]  # noqa: RUF012
    security = BEARER

    @get("/", responses=problem_responses(401, 403, 503))
    async def get_model_access(self, model_access: NamedDependency[ModelAccess]) -> ModelAccessPage:
        """Every configured model and the roles that may use it (``restricted`` false: no rule, every role)."""
        return await model_access.overview()

    @put("/", responses=problem_responses(400, 401, 403, 404, 503))
    async def set_model_access(
        self,
        caller: NamedDependency[Principal],
        model_access: NamedDependency[ModelAccess],
        data: JSONBody[ModelAccessUpdate],
        client_ip: NamedDependency[str | None],
    ) -> ModelAccessOut:
        """Set which roles may use one model (audited). 404 ``model_not_found`` for a model not configured;
        400 for an unknown role, or a rule that would leave a role with no model at all."""
        return await model_access.set_roles(data.model, data.roles, actor=caller.id, ip=client_ip)

"""The admin page of personal API keys: every unrevoked key with its owner, and revoking any of them.
(A person's own keys are on their profile page, ``pages.ProfilePages``.)"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate

from medchat.auth.guards import Principal, require_admin
from medchat.auth.pages import redirect
from medchat.auth.services import Accounts

API_KEYS_PAGE = "/admin/api-keys"


class AdminApiKeyPages(Controller):
    path = API_KEYS_PAGE
    guards = [require_admin]  # noqa: RUF012 - Litestar reads it as a class attribute
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def api_keys(self, accounts: NamedDependency[Accounts]) -> HTMXTemplate:
        keys = await accounts.list_all_api_keys()
        return HTMXTemplate(template_name="auth/admin_api_keys.html", context={"api_keys": keys})

    @post("/{key_id:str}/revoke", media_type=MediaType.HTML)
    async def revoke(
        self,
        request: HTMXRequest,
        *,
        key_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        await accounts.admin_revoke_api_key(key_id, actor=current_user.id, ip=client_ip)
        return redirect(request, API_KEYS_PAGE)

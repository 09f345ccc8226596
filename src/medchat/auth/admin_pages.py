"""The admin's users page: list and search accounts, change a role, disable, delete, export one's data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.status_codes import HTTP_200_OK

from medchat.auth.guards import Principal, principal_of, require_admin
from medchat.auth.pages import export_response, redirect
from medchat.auth.services import Accounts
from medchat.auth.views import Account
from medchat.platform.errors import ValidationFailed
from medchat.platform.web import page_or_fragment, wants_fragment

ADMIN_PAGE_SIZE = 50
USERS_PAGE = "/admin/users"


@dataclass
class RoleForm:
    role: str = ""


@dataclass
class DisabledForm:
    disabled: str = ""


class AdminPages(Controller):
    path = "/admin/users"
    guards = [require_admin]  # noqa: RUF012 - Litestar reads it as a class attribute
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def users(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        q: FromQuery[str] = "",
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        page = await accounts.list_users(query=q, limit=ADMIN_PAGE_SIZE, cursor=cursor)
        context = {"users": page.items, "next_cursor": page.next_cursor, "q": q, "me": principal_of(request)}
        # The search box and "More users" ask for rows; navigation (boosted or a history restore) for the page.
        return page_or_fragment(request, page="auth/admin_users.html", fragment="auth/_user_rows.html", context=context)

    @post("/{user_id:str}/role", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def set_role(
        self,
        request: HTMXRequest,
        *,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[RoleForm],
    ) -> Any:
        if data.role not in ("user", "admin"):
            raise ValidationFailed("Choose the role user or admin.")
        user = await accounts.update_user(
            user_id,
            role=data.role,  # type: ignore[arg-type]
            actor=current_user.id,
            ip=client_ip,
        )
        return self._row(request, user, current_user)

    @post("/{user_id:str}/disabled", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def set_disabled(
        self,
        request: HTMXRequest,
        *,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[DisabledForm],
    ) -> Any:
        user = await accounts.update_user(
            user_id, disabled=data.disabled == "true", actor=current_user.id, ip=client_ip
        )
        return self._row(request, user, current_user)

    @post("/{user_id:str}/delete", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def delete_user(
        self,
        request: HTMXRequest,
        *,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> Any:
        await accounts.delete_account(user_id, actor=current_user.id, ip=client_ip)
        if wants_fragment(request):
            return Response(content="", media_type=MediaType.HTML)  # the row's outerHTML becomes nothing
        return redirect(request, USERS_PAGE)

    @get("/{user_id:str}/export")
    async def export(
        self,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> Response[bytes]:
        return export_response(await accounts.export(user_id, actor=current_user.id, ip=client_ip))

    @staticmethod
    def _row(request: HTMXRequest, user: Account, me: Principal) -> Any:
        """The changed row for the row's own ``hx-post``; a plain (or boosted) form post goes back to the list."""
        if wants_fragment(request):
            return HTMXTemplate(template_name="auth/_user_row.html", context={"user": user, "me": me})
        return redirect(request, USERS_PAGE)

"""The JSON API: ``/api/v1/auth`` (tokens) and ``/api/v1/users`` (profile, export, administration)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from medchat.auth.guards import Principal, require_admin, require_user
from medchat.auth.schemas import (
    LoginIn,
    PasswordChangeIn,
    PasswordConfirmIn,
    ProfileIn,
    RefreshIn,
    RegisterIn,
    TokensOut,
    UserOut,
    UserPageOut,
    UserPatchIn,
)
from medchat.auth.services import Accounts
from medchat.platform.openapi import BEARER, problem_responses


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post(
        "/register",
        summary="Create an account (role user) and sign in",
        responses=problem_responses(400, 403, 409, 413, 429, 503),
    )
    async def register(
        self, data: JSONBody[RegisterIn], accounts: NamedDependency[Accounts], client_ip: NamedDependency[str | None]
    ) -> TokensOut:
        user = await accounts.register(email=data.email, password=data.password, full_name=data.full_name, ip=client_ip)
        return TokensOut.of(user, await accounts.issue_tokens(user))

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Exchange email and password for tokens",
        responses=problem_responses(400, 401, 403, 413, 429, 503),
    )
    async def login(
        self, data: JSONBody[LoginIn], accounts: NamedDependency[Accounts], client_ip: NamedDependency[str | None]
    ) -> TokensOut:
        user = await accounts.authenticate(email=data.email, password=data.password, address=client_ip)
        return TokensOut.of(user, await accounts.issue_tokens(user))

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Rotate a refresh token into a new pair",
        responses=problem_responses(400, 401, 403, 413, 503),
    )
    async def refresh(self, data: JSONBody[RefreshIn], accounts: NamedDependency[Accounts]) -> TokensOut:
        user, tokens = await accounts.refresh(data.refresh_token)
        return TokensOut.of(user, tokens)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke a refresh token (and its rotations)",
        responses=problem_responses(400, 413, 503),
    )
    async def logout(self, data: JSONBody[RefreshIn], accounts: NamedDependency[Accounts]) -> None:
        await accounts.revoke_refresh_token(data.refresh_token)


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = BEARER

    @get("/me", guards=[require_user], responses=problem_responses(401, 503))
    async def me(self, current_user: NamedDependency[Principal], accounts: NamedDependency[Accounts]) -> UserOut:
        return UserOut.of(await accounts.get_user(current_user.id))

    @patch("/me", guards=[require_user], summary="Change your name", responses=problem_responses(400, 401, 413, 503))
    async def update_me(
        self, data: JSONBody[ProfileIn], current_user: NamedDependency[Principal], accounts: NamedDependency[Accounts]
    ) -> UserOut:
        return UserOut.of(await accounts.update_profile(current_user.id, full_name=data.full_name))

    @post(
        "/me/password",
        status_code=HTTP_200_OK,
        guards=[require_user],
        summary="Change your password; other sessions and tokens are revoked, new tokens are returned",
        responses=problem_responses(400, 401, 413, 429, 503),
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChangeIn],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
    ) -> TokensOut:
        user = await accounts.change_password(
            current_user.id, current_password=data.current_password, new_password=data.new_password
        )
        return TokensOut.of(user, await accounts.issue_tokens(user))

    @get(
        "/me/export",
        guards=[require_user],
        summary="Everything medchat holds about you, as JSON",
        responses=problem_responses(401, 503),
    )
    async def export_me(
        self,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> dict[str, Any]:
        return await accounts.export(current_user.id, ip=client_ip)

    @delete(
        "/me",
        guards=[require_user],
        summary="Delete your account and all your data (password required)",
        responses=problem_responses(400, 401, 409, 413, 429, 503),
    )
    async def delete_me(
        self,
        data: JSONBody[PasswordConfirmIn],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await accounts.delete_own_account(current_user.id, password=data.password, ip=client_ip)

    @get("/", guards=[require_admin], summary="List users (admin)", responses=problem_responses(400, 401, 403, 503))
    async def list_users(
        self,
        accounts: NamedDependency[Accounts],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        q: FromQuery[str] = "",
    ) -> UserPageOut:
        page = await accounts.list_users(query=q, limit=limit, cursor=cursor)
        return UserPageOut(items=[UserOut.of(user) for user in page.items], next_cursor=page.next_cursor)

    @get(
        "/{user_id:str}",
        guards=[require_admin],
        summary="One user (admin)",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def get_user(self, user_id: FromPath[str], accounts: NamedDependency[Accounts]) -> UserOut:
        return UserOut.of(await accounts.get_user(user_id))

    @patch(
        "/{user_id:str}",
        guards=[require_admin],
        summary="Change a user's role or disabled flag (admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 413, 503),
    )
    async def patch_user(
        self,
        user_id: FromPath[str],
        data: JSONBody[UserPatchIn],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> UserOut:
        user = await accounts.update_user(
            user_id, role=data.role, disabled=data.disabled, actor=current_user.id, ip=client_ip
        )
        return UserOut.of(user)

    @delete(
        "/{user_id:str}",
        guards=[require_admin],
        summary="Delete a user and all their data (admin)",
        responses=problem_responses(401, 403, 404, 409, 503),
    )
    async def delete_user(
        self,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await accounts.delete_account(user_id, actor=current_user.id, ip=client_ip)

    @get(
        "/{user_id:str}/export",
        guards=[require_admin],
        summary="Export a user's data (admin)",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def export_user(
        self,
        user_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> dict[str, Any]:
        return await accounts.export(user_id, actor=current_user.id, ip=client_ip)

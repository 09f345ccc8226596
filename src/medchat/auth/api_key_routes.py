"""The JSON API of personal API keys: ``/api/v1/users/me/api-keys`` (your own) and
``/api/v1/admin/api-keys`` (everyone's, admin). The key itself is in the 201 of a create, and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from medchat.auth.api_keys import ApiKeyInfo
from medchat.auth.guards import Principal, require_admin, require_user
from medchat.auth.services import Accounts
from medchat.platform.openapi import BEARER, problem_responses


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    expires_in_days: int | None = None
    """1 to 3650; none (the default) for a key that does not expire."""


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    prefix: str
    """The ``mck_<prefix>_`` part of the key, to tell keys apart."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKeyInfo) -> Self:
        """This shape (or a subclass's) of ``key``, field by field."""
        return msgspec.convert(key, cls, from_attributes=True)


class NewApiKeyOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    key: str
    """The whole key, shown this once: it is stored hashed and cannot be shown again."""


class AdminApiKeyOut(ApiKeyOut, kw_only=True):
    owner_id: str
    owner_email: str | None


class ApiKeysController(Controller):
    path = "/api/v1/users/me/api-keys"
    tags = ["users"]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = BEARER
    guards = [require_user]  # noqa: RUF012

    @get("/", summary="Your personal API keys (for /v1)", responses=problem_responses(401, 503))
    async def list_keys(
        self, current_user: NamedDependency[Principal], accounts: NamedDependency[Accounts]
    ) -> list[ApiKeyOut]:
        return [ApiKeyOut.of(key) for key in await accounts.list_api_keys(current_user.id)]

    @post(
        "/",
        summary="Create a personal API key; the key is in this response only",
        responses=problem_responses(400, 401, 409, 413, 503),
    )
    async def create_key(
        self,
        data: JSONBody[ApiKeyIn],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> NewApiKeyOut:
        made = await accounts.create_api_key(
            current_user.id, name=data.name, expires_in_days=data.expires_in_days, ip=client_ip
        )
        info = made.info
        return NewApiKeyOut(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            created_at=info.created_at,
            expires_at=info.expires_at,
            key=made.key,
        )

    @delete("/{key_id:str}", summary="Revoke one of your API keys", responses=problem_responses(401, 404, 503))
    async def revoke_key(
        self,
        key_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await accounts.revoke_api_key(current_user.id, key_id, ip=client_ip)


class AdminApiKeysController(Controller):
    path = "/api/v1/admin/api-keys"
    tags = ["users"]  # noqa: RUF012
    security = BEARER
    guards = [require_admin]  # noqa: RUF012

    @get("/", summary="Every unrevoked API key, with its owner (admin)", responses=problem_responses(401, 403, 503))
    async def list_keys(self, accounts: NamedDependency[Accounts]) -> list[AdminApiKeyOut]:
        return [AdminApiKeyOut.of(key) for key in await accounts.list_all_api_keys()]

    @delete("/{key_id:str}", summary="Revoke anyone's API key (admin)", responses=problem_responses(401, 403, 404, 503))
    async def revoke_key(
        self,
        key_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await accounts.admin_revoke_api_key(key_id, actor=current_user.id, ip=client_ip)

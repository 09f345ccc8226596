"""What the auth API reads and writes (see API.md: auth and users)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from medchat.auth.models import Role
from medchat.auth.views import Account, TokenPair


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    password: str
    full_name: str = ""


class LoginIn(msgspec.Struct):
    email: str
    password: str


class RefreshIn(msgspec.Struct):
    refresh_token: str


class ProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    full_name: str


class PasswordChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    current_password: str
    new_password: str


class PasswordConfirmIn(msgspec.Struct):
    password: str


class UserPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Role | None = None
    disabled: bool | None = None


class UserOut(msgspec.Struct):
    id: str
    email: str
    full_name: str
    role: Role
    created_at: datetime
    disabled: bool
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: Account) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            created_at=user.created_at,
            disabled=user.disabled,
            last_login_at=user.last_login_at,
        )


class TokensOut(msgspec.Struct):
    user: UserOut
    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds until ``access_token`` expires."""
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret

    @classmethod
    def of(cls, user: Account, tokens: TokenPair) -> TokensOut:
        return cls(
            user=UserOut.of(user),
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
        )


class UserPageOut(msgspec.Struct):
    items: list[UserOut]
    next_cursor: str | None

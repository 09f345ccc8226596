"""What auth's service hands out: frozen data, never a Beanie document (those stay in ``models``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from medchat.auth.guards import Principal
from medchat.auth.models import Role, User


@dataclass(frozen=True, slots=True)
class Account:
    """One account as the admin pages, the API and the CLI show it (no password hash, no token version)."""

    id: str
    email: str
    full_name: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds until ``access_token`` expires."""


def account_of(user: User) -> Account:
    return Account(
        id=str(user.id),
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
    )


def principal_of_account(account: Account) -> Principal:
    return Principal(id=account.id, email=account.email, full_name=account.full_name, role=account.role)

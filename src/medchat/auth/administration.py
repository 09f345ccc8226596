"""Administration of accounts: finding and listing them, promoting/demoting, disabling/enabling.

Every change keeps at least one enabled administrator, under one Redis lock shared by every process
(``ADMIN_LOCK``, also taken by account deletion), and is audited with the actor and address.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from beanie import PydanticObjectId

from medchat.auth.core import AccountsCore
from medchat.auth.models import Role, User
from medchat.auth.rules import LastAdmin, object_id
from medchat.auth.views import Account, account_of
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import NotFound
from medchat.platform.pagination import Page, paginate

log = structlog.get_logger(__name__)

ADMIN_LOCK = "medchat:auth:admin-changes"


class Administration(AccountsCore):
    async def get_user(self, user_id: str) -> Account:
        return account_of(await self._user(user_id))

    async def find_by_email(self, email: str) -> Account:
        user = await User.find_one(User.email_normalized == email.strip().lower())
        if user is None:
            raise NotFound(f"No account with the email {email.strip()}.")
        return account_of(user)

    async def emails_by_id(self, user_ids: set[str]) -> dict[str, str]:
        """User id -> email for those of ``user_ids`` that are accounts which still exist (one read)."""
        ids: list[PydanticObjectId] = [found for found in map(object_id, user_ids) if found is not None]
        if not ids:
            return {}
        users = await User.find({"_id": {"$in": ids}}).to_list()
        return {str(user.id): user.email for user in users}

    async def list_users(self, *, query: str = "", limit: int = 50, cursor: str | None = None) -> Page[Account]:
        """Newest first; ``query`` matches email or name (case-insensitive substring)."""
        criteria: dict[str, Any] = {}
        if query.strip():
            pattern = re.escape(query.strip())
            criteria["$or"] = [
                {"email_normalized": {"$regex": pattern, "$options": "i"}},
                {"full_name": {"$regex": pattern, "$options": "i"}},
            ]
        return (await paginate(User, criteria, limit=limit, cursor=cursor)).map(account_of)

    async def update_user(
        self,
        user_id: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        actor: str = "cli",
        ip: str | None = None,
    ) -> Account:
        """Promote/demote and disable/enable, keeping at least one enabled admin. Disabling revokes sessions."""
        async with self._redis.lock(ADMIN_LOCK, timeout=10, blocking_timeout=10):
            user = await self._user(user_id)
            loses_admin = user.role == "admin" and not user.disabled and (role == "user" or disabled is True)
            if loses_admin:
                await ensure_another_admin(user)
            changes: dict[str, Any] = {"updated_at": utcnow()}
            if role is not None:
                changes["role"] = role
            if disabled is not None and disabled != user.disabled:
                changes["disabled"] = disabled
                if disabled:
                    changes["token_version"] = user.token_version + 1
            await user.set(changes)
            await self.principals.forget(user_id)
        log.info("account changed", user_id=user_id, role=role, disabled=disabled, actor=actor)
        changed = {name: value for name, value in (("role", role), ("disabled", disabled)) if value is not None}
        await audit.record("update", actor_id=actor, resource_type="user", resource_id=user_id, ip=ip, **changed)
        return account_of(user)


async def ensure_another_admin(user: User) -> None:
    """``LastAdmin`` unless an enabled administrator other than ``user`` exists (call under ``ADMIN_LOCK``)."""
    # Admins are few: read them rather than count (nx-27017 miscounts ``$ne`` on ``_id``).
    admins = await User.find(User.role == "admin", User.disabled == False).to_list()  # noqa: E712 - a query
    if not any(admin.id != user.id for admin in admins):
        raise LastAdmin("This is the only enabled administrator; promote someone else first.")

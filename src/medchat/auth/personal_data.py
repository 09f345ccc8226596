"""A person's data across every module: exporting it and deleting the account with it.

Each module gives its share through ``USER_EXPORT_REQUESTED`` and forgets its share on ``USER_DELETED``
(``medchat.platform.events``); both are audited.
"""

from __future__ import annotations

from typing import Any

import structlog

from medchat.auth.administration import ADMIN_LOCK, ensure_another_admin
from medchat.auth.api_keys import ApiKeys
from medchat.auth.models import RefreshToken
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.events import USER_DELETED, USER_EXPORT_REQUESTED

log = structlog.get_logger(__name__)


class PersonalData(ApiKeys):
    async def export(self, user_id: str, *, actor: str | None = None, ip: str | None = None) -> dict[str, Any]:
        """The user's profile plus each module's share, gathered through ``USER_EXPORT_REQUESTED``.

        Audited as an ``export`` of the user by ``actor`` (the user themself when None)."""
        user = await self._user(user_id)
        shares = await self.events.publish(USER_EXPORT_REQUESTED, user_id=user_id)
        await audit.record("export", actor_id=actor or user_id, resource_type="user", resource_id=user_id, ip=ip)
        data: dict[str, Any] = {}
        for share in shares:
            if isinstance(share, dict):
                data.update(share)
        return {
            **data,
            "api_keys": await self.export_api_keys(user_id),
            "exported_at": utcnow().isoformat(),
            "user": {
                "id": str(user.id),
                "email": user.email,
                "full_name": user.full_name,
                "role": user.role,
                "disabled": user.disabled,
                "created_at": user.created_at.isoformat(),
                "updated_at": user.updated_at.isoformat(),
                "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
            },
        }

    async def delete_account(self, user_id: str, *, actor: str, ip: str | None = None) -> None:
        """Delete a user and, through ``USER_DELETED``, everything every module holds for them."""
        # The lock outlives the modules' clean-up, which may take a while for a user with many documents.
        async with self._redis.lock(ADMIN_LOCK, timeout=600, blocking_timeout=10):
            user = await self._user(user_id)
            if user.role == "admin" and not user.disabled:
                await ensure_another_admin(user)
            await self.events.publish(USER_DELETED, user_id=user_id)
            await RefreshToken.find(RefreshToken.user_id == user_id).delete()
            await self.delete_api_keys(user_id)
            await user.delete()
            await self.principals.forget(user_id)
        log.info("account deleted", user_id=user_id, actor=actor)
        await audit.record("delete", actor_id=actor, resource_type="user", resource_id=user_id, ip=ip)

    async def delete_own_account(self, user_id: str, *, password: str, ip: str | None = None) -> None:
        """A person deleting their own account, confirmed by their password."""
        user = await self._user(user_id)
        await self._confirm_password(user, password, field="password", message="The password is not correct.")
        await self.delete_account(user_id, actor=user_id, ip=ip)

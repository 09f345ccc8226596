"""A person's own changes: their name and their password."""

from __future__ import annotations

import structlog

from medchat.auth.core import AccountsCore
from medchat.auth.passwords import password_problems
from medchat.auth.rules import clean_name, field_error
from medchat.auth.views import Account, account_of
from medchat.platform.clock import utcnow

log = structlog.get_logger(__name__)


class Profiles(AccountsCore):
    async def update_profile(self, user_id: str, *, full_name: str) -> Account:
        user = await self._user(user_id)
        await user.set({"full_name": clean_name(full_name), "updated_at": utcnow()})
        await self.principals.forget(user_id)
        return account_of(user)

    async def change_password(self, user_id: str, *, current_password: str, new_password: str) -> Account:
        """Set a new password and end every other session and token of this user: the caller starts a
        new session (``start_session``) or token pair (``issue_tokens``) for the one asking."""
        user = await self._user(user_id)
        await self._confirm_password(
            user, current_password, field="current_password", message="Your current password is not correct."
        )
        problems = password_problems(
            new_password, email=user.email_normalized, full_name=user.full_name,
            min_length=self.settings.password_min_length,
        )  # fmt: skip
        if problems:
            raise field_error("new_password", *problems)
        new_hash = await self.passwords.hash(new_password)
        await user.set({"password_hash": new_hash, "token_version": user.token_version + 1, "updated_at": utcnow()})
        await self.principals.forget(user_id)
        log.info("password changed; other sessions revoked", user_id=user_id)
        return account_of(user)

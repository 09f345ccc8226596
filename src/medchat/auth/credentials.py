"""What a signed-in person holds: browser sessions, access tokens and rotating refresh tokens, and
turning any of them back into a ``Principal`` on each request."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from typing import Any

import structlog

from medchat.auth.core import AccountsCore
from medchat.auth.guards import Principal
from medchat.auth.models import RefreshToken, User
from medchat.auth.rules import AccountDisabled, InvalidToken, object_id
from medchat.auth.tokens import digest, new_secret
from medchat.auth.views import Account, TokenPair, account_of
from medchat.platform.clock import utcnow
from medchat.platform.errors import NotFound

log = structlog.get_logger(__name__)

_PRINCIPAL_FIELDS = {"email": 1, "full_name": 1, "role": 1, "disabled": 1, "token_version": 1}
_REUSED = "This refresh token was already used; every token of this sign-in is now revoked."


class Credentials(AccountsCore):
    # --- who is asking -------------------------------------------------------------------------

    async def principal_from_access_token(self, token: str) -> Principal | None:
        claims = self.access_tokens.read(token)
        return await self._principal(claims.user_id, claims.token_version) if claims else None

    async def principal_from_session(self, secret: str) -> Principal | None:
        session = await self.sessions.read(secret)
        return await self._principal(session.user_id, session.token_version) if session else None

    async def _principal(self, user_id: str, token_version: int) -> Principal | None:
        """The user behind a session or token, if it still exists, is enabled and was not revoked since:
        one ``_id`` read of five fields, no document model, unless this process read it recently (the
        ``principals`` cache, which every change to those fields clears in every process at once)."""
        found = await self.principals.get(user_id, self._stored)
        if found is None or found.get("disabled") or found.get("token_version", 0) != token_version:
            return None
        return Principal(id=user_id, email=found["email"], full_name=found.get("full_name", ""), role=found["role"])

    @staticmethod
    async def _stored(user_id: str) -> dict[str, Any] | None:
        found = object_id(user_id)
        if found is None:
            return None
        return await User.get_pymongo_collection().find_one({"_id": found}, _PRINCIPAL_FIELDS)

    async def _token_version(self, account: Account) -> int:
        """The version to stamp on a new session or token pair: read now, so the credentials follow a
        password change made just before, and none are handed to an account disabled meanwhile."""
        found = await self._stored(account.id)
        if found is None:
            raise NotFound("No such user.")
        if found.get("disabled"):
            raise AccountDisabled("This account is disabled. Ask an administrator to enable it.")
        return int(found.get("token_version", 0))

    # --- browser sessions ----------------------------------------------------------------------

    async def start_session(self, account: Account) -> str:
        """A new session for a person who just signed in (or changed their password): the cookie value."""
        return await self.sessions.create(user_id=account.id, token_version=await self._token_version(account))

    async def end_session(self, secret: str) -> None:
        await self.sessions.delete(secret)

    # --- API tokens ----------------------------------------------------------------------------

    async def issue_tokens(self, account: Account) -> TokenPair:
        """An access token plus a refresh token that starts a new refresh family (a login)."""
        return await self._issue(account.id, await self._token_version(account), family_id=None)

    async def _issue(self, user_id: str, token_version: int, *, family_id: str | None) -> TokenPair:
        """A login starts a new refresh family, a refresh continues one."""
        refresh = new_secret()
        now = utcnow()
        await RefreshToken(
            token_hash=digest(refresh),
            user_id=user_id,
            family_id=family_id or uuid.uuid4().hex,
            token_version=token_version,
            expires_at=now + timedelta(days=self.settings.refresh_token_days),
        ).insert()
        if family_id is None:  # a login: a good moment to forget this user's expired tokens
            await RefreshToken.find(RefreshToken.user_id == user_id, RefreshToken.expires_at < now).delete()
        access = self.access_tokens.issue(user_id=user_id, token_version=token_version)
        return TokenPair(access, refresh, int(self.access_tokens.lifetime.total_seconds()))

    async def refresh(self, refresh_token: str) -> tuple[Account, TokenPair]:
        """Exchange a refresh token for a new pair. Presenting a used one revokes its whole family."""
        stored = await RefreshToken.find_one(RefreshToken.token_hash == digest(refresh_token))
        if stored is None:
            raise InvalidToken("The refresh token is not valid.")
        if stored.revoked or stored.used:
            await self._revoke_family(stored.family_id)
            log.warning("refresh token reused; family revoked", user_id=stored.user_id, family_id=stored.family_id)
            raise InvalidToken(_REUSED)
        if stored.expires_at.replace(tzinfo=stored.expires_at.tzinfo or UTC) <= utcnow():
            raise InvalidToken("The refresh token has expired. Sign in again.")
        claimed = await RefreshToken.get_pymongo_collection().update_one(
            {"_id": stored.id, "used": False, "revoked": False}, {"$set": {"used": True}}
        )
        if claimed.modified_count != 1:  # a concurrent refresh with the same token got there first
            await self._revoke_family(stored.family_id)
            raise InvalidToken(_REUSED)
        found = object_id(stored.user_id)
        user = await User.get(found) if found else None
        if user is None or user.disabled or user.token_version != stored.token_version:
            raise InvalidToken("The refresh token is no longer valid. Sign in again.")
        tokens = await self._issue(stored.user_id, user.token_version, family_id=stored.family_id)
        return account_of(user), tokens

    async def revoke_refresh_token(self, refresh_token: str) -> None:
        """Logout: the token's family stops working. Unknown tokens are ignored (logout is idempotent)."""
        stored = await RefreshToken.find_one(RefreshToken.token_hash == digest(refresh_token))
        if stored is not None:
            await self._revoke_family(stored.family_id)

    async def _revoke_family(self, family_id: str) -> None:
        await RefreshToken.get_pymongo_collection().update_many({"family_id": family_id}, {"$set": {"revoked": True}})

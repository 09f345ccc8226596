"""What every part of the auth service shares: settings, the event bus, Redis and the building blocks
(password hashing, access tokens, sessions, the login limiter), plus reading a user by id.

``Accounts`` (``services.py``) is the one service; its jobs live in one module each (``signin``,
``credentials``, ``profiles``, ``administration``, ``personal_data``), as classes on this base.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from medchat.auth.models import User
from medchat.auth.passwords import Passwords
from medchat.auth.principal_cache import PrincipalCache
from medchat.auth.ratelimit import LoginLimiter, PasswordConfirmLimiter, RegistrationLimiter
from medchat.auth.rules import field_error, object_id
from medchat.auth.sessions import Sessions
from medchat.auth.tokens import AccessTokens, derive_key
from medchat.platform.errors import NotFound
from medchat.platform.events import EventBus
from medchat.settings import Settings


class AccountsCore:
    """One per process; cheap to build; holds no per-request state."""

    def __init__(self, *, settings: Settings, redis: Redis, events: EventBus) -> None:
        self.settings = settings
        self.events = events
        self._redis = redis
        self.passwords = Passwords(settings)
        self.access_tokens = AccessTokens(
            key=derive_key(settings.signing_key, "access-token"),
            lifetime=timedelta(minutes=settings.access_token_minutes),
        )
        self.sessions = Sessions(redis, lifetime=timedelta(days=settings.session_days))
        self.limiter = LoginLimiter(
            redis,
            per_account_and_address=settings.login_attempts_per_minute,
            per_account=settings.login_attempts_per_minute_per_account,
            per_address=settings.login_attempts_per_minute_per_address,
        )
        self.registrations = RegistrationLimiter(redis, per_address=settings.registrations_per_hour_per_address)
        self.password_checks = PasswordConfirmLimiter(redis, per_account=settings.password_failures_per_hour)
        self.principals = PrincipalCache(redis)

    async def close(self) -> None:
        await self.principals.close()

    async def _confirm_password(self, user: User, password: str, *, field: str, message: str) -> None:
        """Check a signed-in person's current password; wrong ones are limited per account (429 past it)."""
        attempt = await self.password_checks.reserve(user_id=str(user.id))
        if not await self.passwords.verify(user.password_hash, password):
            raise field_error(field, message)
        await self.password_checks.release(attempt)

    async def _user(self, user_id: str) -> User:
        """The user's document (inside auth only); ``NotFound`` for an unknown or malformed id."""
        found = object_id(user_id)
        user = await User.get(found) if found else None
        if user is None:
            raise NotFound("No such user.")
        return user

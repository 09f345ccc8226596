"""Registration and sign-in: self-service sign-up, accounts made by an administrator or the CLI, and
checking a login (rate-limited, audited, constant-time for unknown emails)."""

from __future__ import annotations

from typing import Any

import structlog
from pymongo.errors import DuplicateKeyError

from medchat.auth.core import AccountsCore
from medchat.auth.models import Role, User
from medchat.auth.passwords import password_problems
from medchat.auth.rules import (
    MAX_EMAIL_LENGTH,
    AccountDisabled,
    RegistrationClosed,
    clean_name,
    email_taken,
    field_error,
    normalize_email,
)
from medchat.auth.views import Account, account_of
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import InvalidCredentials

log = structlog.get_logger(__name__)


class SignIn(AccountsCore):
    async def register(self, *, email: str, password: str, full_name: str = "", ip: str | None = None) -> Account:
        """Self-service sign-up: always role ``user``; subject to ``registration`` and ``registration_domains``."""
        if self.settings.registration == "closed":
            raise RegistrationClosed("Registration is closed. Ask an administrator for an account.")
        await self.registrations.reserve(address=ip)
        normalized = normalize_email(email)
        domains = self.settings.registration_domains
        if domains and normalized.rpartition("@")[2] not in domains:
            allowed = ", ".join(f"@{domain}" for domain in domains)
            raise RegistrationClosed(
                f"Registration is open to {allowed} addresses only.",
                errors=[{"key": "email", "message": f"Use an address ending in {allowed}."}],
            )
        account = await self.create_user(email=email, password=password, full_name=full_name, role="user")
        await audit.record("register", actor_id=account.id, resource_type="user", resource_id=account.id, ip=ip)
        return account

    async def create_user(self, *, email: str, password: str, full_name: str = "", role: Role = "user") -> Account:
        """Create an account with any role (the CLI's way to make the first admin); checks the password policy."""
        normalized = normalize_email(email)
        full_name = clean_name(full_name)
        problems = password_problems(
            password, email=normalized, full_name=full_name, min_length=self.settings.password_min_length
        )
        if problems:
            raise field_error("password", *problems)
        if await User.find_one(User.email_normalized == normalized):
            raise email_taken()
        user = User(
            email=email.strip(),
            email_normalized=normalized,
            full_name=full_name,
            role=role,
            password_hash=await self.passwords.hash(password),
        )
        try:
            await user.insert()
        except DuplicateKeyError:  # a concurrent registration won the race
            raise email_taken() from None
        log.info("account created", user_id=str(user.id), role=role)
        return account_of(user)

    async def authenticate(self, *, email: str, password: str, address: str | None) -> Account:
        """Check a login. Unknown email and wrong password take the same time and give the same answer."""
        normalized = email.strip().lower()
        attempt = await self.limiter.reserve(email_normalized=normalized, address=address)
        user = await User.find_one(User.email_normalized == normalized) if len(normalized) <= MAX_EMAIL_LENGTH else None
        if user is None:
            await self.passwords.verify_dummy(password)
            log.info("login failed", reason="unknown email", address=address)
            await _audit_failed_login(None, normalized, address, "unknown_email")
            raise InvalidCredentials("The email or password is not correct.")
        if not await self.passwords.verify(user.password_hash, password):
            log.info("login failed", reason="wrong password", user_id=str(user.id), address=address)
            await _audit_failed_login(str(user.id), normalized, address, "wrong_password")
            raise InvalidCredentials("The email or password is not correct.")
        if user.disabled:
            log.info("login refused", reason="disabled", user_id=str(user.id), address=address)
            await _audit_failed_login(str(user.id), normalized, address, "disabled")
            raise AccountDisabled("This account is disabled. Ask an administrator to enable it.")
        await self.limiter.succeeded(attempt)
        changes: dict[str, Any] = {"last_login_at": utcnow()}
        if self.passwords.needs_rehash(user.password_hash):
            changes["password_hash"] = await self.passwords.hash(password)
            log.info("password rehashed with the current parameters", user_id=str(user.id))
        await user.set(changes)
        log.info("login", user_id=str(user.id), address=address)
        await audit.record("login", actor_id=str(user.id), resource_type="user", resource_id=str(user.id), ip=address)
        return account_of(user)


async def _audit_failed_login(user_id: str | None, email_normalized: str, address: str | None, reason: str) -> None:
    """``login_failed``: the account when it exists, a hash of the email typed (to match attempts on one
    address without storing it), the reason; never the password."""
    await audit.record(
        "login_failed",
        actor_id=user_id,
        resource_type="user",
        resource_id=user_id,
        ip=address,
        content=email_normalized,
        reason=reason,
    )

"""Personal API keys: the one credential of the OpenAI-compatible ``/v1/`` routes.

A key is ``mck_<prefix>_<secret>``: 8 alphanumeric characters to look it up and to show in lists, then
256 random bits. Only the SHA-256 of the whole key is stored (the key is random, so a fast hash is right)
and the key is shown once, when it is made. Keys are a separate credential: they work on ``/v1/`` only,
and sessions and access tokens do not work there. Creating and revoking are audited.
"""

from __future__ import annotations

import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from pymongo.errors import DuplicateKeyError

from medchat.auth.core import AccountsCore
from medchat.auth.guards import Principal
from medchat.auth.models import ApiKey, User
from medchat.auth.ratelimit import WINDOW_SECONDS, Limit, SlidingWindow
from medchat.auth.rules import AccountDisabled, field_error, object_id
from medchat.auth.tokens import digest, new_secret
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import Conflict, NotFound

log = structlog.get_logger(__name__)

KEY_SCHEME = "mck"
PREFIX_LENGTH = 8
SECRET_MIN_LENGTH = 43
"""``token_urlsafe(32)``: 256 random bits."""
MAX_KEY_NAME_LENGTH = 100
MAX_EXPIRY_DAYS = 3650
LAST_USED_EVERY = timedelta(minutes=1)
_PREFIX_ALPHABET = string.ascii_letters + string.digits
"""No ``_`` or ``-``, so the prefix always parses out of the key."""


class TooManyApiKeys(Conflict):
    code = "too_many_api_keys"
    title = "Too many API keys"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as lists show it: never the key, never its hash. ``owner_email`` only in the admin list."""

    id: str
    owner_id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    owner_email: str | None = None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: ``key`` is the only time the secret is ever shown."""

    info: ApiKeyInfo
    key: str


def info_of(key: ApiKey, owner_email: str | None = None) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=str(key.id),
        owner_id=key.owner_id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        owner_email=owner_email,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _prefix_of(key: str) -> str | None:
    scheme, _, rest = key.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or len(prefix) != PREFIX_LENGTH or len(secret) < SECRET_MIN_LENGTH:
        return None
    return prefix


class ApiKeys(AccountsCore):
    # --- a person's own keys -------------------------------------------------------------------

    async def create_api_key(
        self,
        owner_id: str,
        *,
        name: str,
        expires_in_days: int | None = None,
        ip: str | None = None,
    ) -> NewApiKey:
        """A new key for ``owner_id``; ``ValidationFailed`` for a bad name or expiry, ``TooManyApiKeys`` past
        ``api_keys_per_user`` unrevoked keys."""
        clean = " ".join(name.split())
        if not 1 <= len(clean) <= MAX_KEY_NAME_LENGTH:
            raise field_error("name", f"Name the key with 1 to {MAX_KEY_NAME_LENGTH} characters.")
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise field_error("expires_in_days", f"Choose an expiry of 1 to {MAX_EXPIRY_DAYS} days, or none.")
        await self._user(owner_id)
        allowed = self.settings.api_keys_per_user
        if await ApiKey.find({"owner_id": owner_id, "revoked": False}).count() >= allowed:
            raise TooManyApiKeys(f"You already have {allowed} API keys; revoke one you no longer use first.")
        now = utcnow()
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
        for _ in range(3):  # a prefix collision (one in 62^8) just draws again
            prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
            key = f"{KEY_SCHEME}_{prefix}_{new_secret()}"
            stored = ApiKey(
                owner_id=owner_id,
                name=clean,
                prefix=prefix,
                key_hash=digest(key),
                created_at=now,
                expires_at=expires_at,
            )
            try:
                await stored.insert()
                break
            except DuplicateKeyError:
                continue
        else:
            raise Conflict("Could not make a unique key; try again.")
        log.info("api key created", user_id=owner_id, key_id=str(stored.id))
        await audit.record(
            "create", actor_id=owner_id, resource_type="api_key", resource_id=str(stored.id), ip=ip, prefix=prefix
        )
        return NewApiKey(info_of(stored), key)

    async def list_api_keys(self, owner_id: str) -> list[ApiKeyInfo]:
        """The owner's unrevoked keys (expired ones included, so they can be tidied away), newest first."""
        keys = await ApiKey.find({"owner_id": owner_id, "revoked": False}).sort("-created_at").to_list()
        return [info_of(key) for key in keys]

    async def revoke_api_key(self, owner_id: str, key_id: str, *, ip: str | None = None) -> None:
        """Revoke one of the owner's keys; ``NotFound`` for anyone else's (or an unknown id)."""
        key = await self._api_key(key_id)
        if key is None or key.owner_id != owner_id:
            raise NotFound("No such API key.")
        await self._revoke(key, actor=owner_id, ip=ip)

    # --- administration ------------------------------------------------------------------------

    async def list_all_api_keys(self) -> list[ApiKeyInfo]:
        """Every unrevoked key with its owner's email, newest first (admin)."""
        keys = await ApiKey.find({"revoked": False}).sort("-created_at").to_list()
        emails = await self._emails({key.owner_id for key in keys})
        return [info_of(key, emails.get(key.owner_id)) for key in keys]

    async def admin_revoke_api_key(self, key_id: str, *, actor: str, ip: str | None = None) -> None:
        key = await self._api_key(key_id)
        if key is None:
            raise NotFound("No such API key.")
        await self._revoke(key, actor=actor, ip=ip)

    # --- who is asking on /v1/ -----------------------------------------------------------------

    async def principal_from_api_key(self, key: str) -> Principal | None:
        """The owner behind a valid, unexpired, unrevoked key, with ``api_key_id`` set; None otherwise.
        ``AccountDisabled`` when the key is good but its owner is disabled."""
        prefix = _prefix_of(key)
        stored = await ApiKey.find_one(ApiKey.prefix == prefix) if prefix else None
        if stored is None or not hmac.compare_digest(stored.key_hash, digest(key)):
            return None
        now = utcnow()
        if stored.revoked or (stored.expires_at is not None and _aware(stored.expires_at) <= now):
            return None
        owner = await self._stored(stored.owner_id)
        if owner is None:
            return None
        if owner.get("disabled"):
            raise AccountDisabled("The account this key belongs to is disabled.")
        if stored.last_used_at is None or _aware(stored.last_used_at) <= now - LAST_USED_EVERY:
            await ApiKey.get_pymongo_collection().update_one({"_id": stored.id}, {"$set": {"last_used_at": now}})
        return Principal(
            id=stored.owner_id,
            email=owner["email"],
            full_name=owner.get("full_name", ""),
            role=owner["role"],
            api_key_id=str(stored.id),
        )

    async def count_api_key_request(self, key_id: str) -> None:
        """Count one ``/v1/`` request under the key's per-minute limit; ``RateLimited`` when it is full."""
        window = SlidingWindow(
            self._redis,
            window_seconds=WINDOW_SECONDS,
            refusal="This API key made too many requests. Try again in {seconds} seconds.",
        )
        limit = Limit(f"medchat:auth:api-key-requests:{key_id}", self.settings.api_key_requests_per_minute)
        await window.reserve([limit])

    # --- a person's data -----------------------------------------------------------------------

    async def export_api_keys(self, owner_id: str) -> list[dict[str, str | None]]:
        """Every key the person holds or held, as metadata (no hash): their share of an export."""
        keys = await ApiKey.find(ApiKey.owner_id == owner_id).sort("created_at").to_list()
        return [
            {
                "id": str(key.id),
                "name": key.name,
                "prefix": key.prefix,
                "created_at": key.created_at.isoformat(),
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
                "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
                "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            }
            for key in keys
        ]

    async def delete_api_keys(self, owner_id: str) -> None:
        await ApiKey.find(ApiKey.owner_id == owner_id).delete()

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    async def _api_key(key_id: str) -> ApiKey | None:
        """An unrevoked key by id; None for a revoked, unknown or malformed one."""
        found = object_id(key_id)
        key = await ApiKey.get(found) if found else None
        return key if key is not None and not key.revoked else None

    async def _revoke(self, key: ApiKey, *, actor: str, ip: str | None) -> None:
        await key.set({"revoked": True, "revoked_at": utcnow()})
        log.info("api key revoked", user_id=key.owner_id, key_id=str(key.id), actor=actor)
        await audit.record("delete", actor_id=actor, resource_type="api_key", resource_id=str(key.id), ip=ip)

    @staticmethod
    async def _emails(user_ids: set[str]) -> dict[str, str]:
        ids = [found for found in map(object_id, user_ids) if found is not None]
        users = await User.find({"_id": {"$in": ids}}).to_list() if ids else []
        return {str(user.id): user.email for user in users}

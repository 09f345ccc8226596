"""The auth module's MongoDB documents. They never leave the module: others get ``Principal`` and ids."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from beanie import Document, Indexed
from pydantic import Field

from medchat.platform.clock import utcnow

Role = Literal["user", "admin"]


class User(Document):
    email: str
    """As the person typed it; ``email_normalized`` (lowercase) is the unique key."""
    email_normalized: Annotated[str, Indexed(unique=True)]
    full_name: str = ""
    role: Role = "user"
    disabled: bool = False
    password_hash: str
    token_version: int = 0
    """Stamped into every session and token; bumping it (password change, disable) revokes them all."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None

    class Settings:
        name = "users"


class RefreshToken(Document):
    """One issued refresh token, stored as a SHA-256 hash. A login starts a family; each refresh adds one."""

    token_hash: Annotated[str, Indexed(unique=True)]
    user_id: Annotated[str, Indexed()]
    family_id: Annotated[str, Indexed()]
    token_version: int
    expires_at: datetime
    used: bool = False
    """Set when it is exchanged for a new pair; presenting it again revokes the whole family."""
    revoked: bool = False
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "auth_refresh_tokens"


class ApiKey(Document):
    """A personal API key for ``/v1/``: stored as the SHA-256 of the whole key, shown once at creation."""

    owner_id: Annotated[str, Indexed()]
    name: str
    prefix: Annotated[str, Indexed(unique=True)]
    """The 8 characters after ``mck_``: shown in lists so a person can tell their keys apart, and looked up."""
    key_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    """Updated at most once a minute."""
    revoked: bool = False
    """Queried instead of ``revoked_at`` (the embedded MongoDB stand-in does not match ``null``)."""
    revoked_at: datetime | None = None

    class Settings:
        name = "auth_api_keys"

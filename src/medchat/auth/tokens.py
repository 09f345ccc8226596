"""Access tokens (short-lived HS256 JWTs through Litestar's ``Token``) and opaque refresh/session secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token

ALGORITHM = "HS256"
"""Pinned: decoding accepts this algorithm only, so ``alg: none`` or an RSA/HMAC confusion never verifies."""
ISSUER = "medchat"
AUDIENCE = "medchat-api"
REQUIRED_CLAIMS = ("sub", "exp", "iat", "jti", "iss", "aud")


def derive_key(secret: str, purpose: str) -> str:
    """A key for one purpose, so a leak or misuse in one place (say, CSRF) does not sign tokens elsewhere."""
    return hmac.new(secret.encode(), f"medchat:{purpose}".encode(), hashlib.sha256).hexdigest()


def new_secret() -> str:
    """A 256-bit random value for a refresh token or a session cookie."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored for a refresh token or session: a leaked database or Redis dump holds no usable secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    token_version: int


class AccessTokens:
    def __init__(self, *, key: str, lifetime: timedelta) -> None:
        self._key = key
        self.lifetime = lifetime

    def issue(self, *, user_id: str, token_version: int) -> str:
        now = datetime.now(UTC)
        token = Token(
            sub=user_id,
            exp=now + self.lifetime,
            iat=now,
            iss=ISSUER,
            aud=AUDIENCE,
            jti=uuid.uuid4().hex,
            extras={"ver": token_version},
        )
        return token.encode(self._key, ALGORITHM)

    def read(self, encoded: str) -> AccessClaims | None:
        """The claims of a valid token; ``None`` when it is malformed, tampered, expired or not ours."""
        try:
            token = Token.decode(
                encoded,
                self._key,
                ALGORITHM,
                audience=AUDIENCE,
                issuer=ISSUER,
                require_claims=REQUIRED_CLAIMS,
            )
        except NotAuthorizedException:
            return None
        version = token.extras.get("ver")  # Litestar's Token encodes ``extras`` as one nested claim
        if not isinstance(version, int) or not isinstance(token.jti, str):
            return None
        return AccessClaims(user_id=token.sub, token_version=version)

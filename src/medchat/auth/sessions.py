"""Server-side browser sessions in Redis, keyed by the SHA-256 of an opaque cookie value.

Litestar's ``ServerSideSessionConfig`` was tried first and left out: it stores an empty session and
sets a cookie on every anonymous request (measured with Litestar 2.25: 10 anonymous GETs, 10 stored
sessions), it keeps the session id across a login (session fixation), and it cannot end a user's
other sessions. Here a session exists only after a login, each login starts a new id, and each
session carries the user's ``token_version``, so bumping it (password change, disable) ends every
session of that user at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from medchat.auth.tokens import digest, new_secret

SESSION_COOKIE = "medchat_session"
_KEY_PREFIX = "medchat:auth:session:"


@dataclass(frozen=True)
class SessionData:
    user_id: str
    token_version: int


class Sessions:
    def __init__(self, redis: Redis, *, lifetime: timedelta) -> None:
        self._redis = redis
        self.lifetime = lifetime

    async def create(self, *, user_id: str, token_version: int) -> str:
        """Store a new session and return the cookie value (the only place the secret exists)."""
        secret = new_secret()
        payload = json.dumps({"uid": user_id, "ver": token_version})
        await self._redis.set(_KEY_PREFIX + digest(secret), payload, ex=int(self.lifetime.total_seconds()))
        return secret

    async def read(self, secret: str) -> SessionData | None:
        raw = await self._redis.get(_KEY_PREFIX + digest(secret))
        if raw is None:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            return SessionData(user_id=str(data["uid"]), token_version=int(data["ver"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def delete(self, secret: str) -> None:
        await self._redis.delete(_KEY_PREFIX + digest(secret))

"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from medchat.settings import Settings

MAX_PASSWORD_LENGTH = 256
ZXCVBN_MAX_LENGTH = 72
"""zxcvbn refuses longer input (its matching is quadratic); the first 72 characters decide the score."""
MIN_STRENGTH_SCORE = 3
"""zxcvbn's 0..4 scale; 3 means "safely unguessable" (more than 10^8 guesses)."""


class Passwords:
    """argon2id with the costs from settings. Each call runs in a worker thread: one hash takes ~75 ms of CPU."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=max(settings.password_hash_parallelism, 1),
            type=Type.ID,
        )
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the same time as a real verification, so an unknown email answers like a wrong password."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("medchat dummy password, never matches a login")
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def password_problems(password: str, *, email: str, full_name: str = "", min_length: int) -> list[str]:
    """Why ``password`` is refused, as sentences meant for the person choosing it; empty when it is acceptable."""
    if len(password) < min_length:
        return [f"Use at least {min_length} characters (this one has {len(password)})."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Use at most {MAX_PASSWORD_LENGTH} characters."]
    local_part = email.lower().partition("@")[0]
    if _contains_email(password, email=email.lower(), local_part=local_part):
        return ["Don't use your email address in your password."]
    name = full_name.lower()
    user_inputs = [email, local_part, name, name.replace(" ", ""), *name.split()]
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=user_inputs)
    if result["score"] >= MIN_STRENGTH_SCORE:
        return []
    feedback = result["feedback"]
    return [
        "This password is too easy to guess.",
        *([feedback["warning"]] if feedback.get("warning") else []),
        *(feedback.get("suggestions") or ["Add another word or two; uncommon words are better."]),
    ]


def _contains_email(password: str, *, email: str, local_part: str) -> bool:
    """Whether the password holds the email address, or its local part as a word of its own.

    A word of its own, not any substring: "admin@…" must not refuse "badminton court at nine", nor "ada@…"
    "Canada geese fly south": the local part is in those letters, the address is not in the password (digits
    next to it do not hide it: "admin2024" holds "admin")."""
    lowered = password.lower()
    if email and email in lowered:
        return True
    if len(local_part) < 3:
        return False
    return re.search(rf"(?<![^\W\d_]){re.escape(local_part)}(?![^\W\d_])", lowered) is not None

"""What an account must satisfy, and the errors auth raises (subclasses of the platform's, so they
become problem+json or a page in one place)."""

from __future__ import annotations

import re

from beanie import PydanticObjectId
from bson.errors import InvalidId

from medchat.platform.errors import Conflict, Forbidden, Unauthorized, ValidationFailed

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 120
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountDisabled(Forbidden):
    code = "account_disabled"
    title = "Account disabled"


class RegistrationClosed(Forbidden):
    code = "registration_closed"
    title = "Registration closed"


class InvalidToken(Unauthorized):
    code = "invalid_token"
    title = "Invalid token"


class LastAdmin(Conflict):
    code = "last_admin"
    title = "At least one administrator must remain"


def normalize_email(email: str) -> str:
    """Lowercase and check the shape of an email; ``ValidationFailed`` on the ``email`` field otherwise."""
    normalized = email.strip().lower()
    if len(normalized) > MAX_EMAIL_LENGTH or not _EMAIL.match(normalized):
        raise field_error("email", "Enter an email address like name@example.org.")
    return normalized


def clean_name(full_name: str) -> str:
    name = " ".join(full_name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise field_error("full_name", f"Use at most {MAX_NAME_LENGTH} characters for your name.")
    return name


def field_error(field: str, *messages: str) -> ValidationFailed:
    return ValidationFailed(" ".join(messages), errors=[{"key": field, "message": message} for message in messages])


def email_taken() -> Conflict:
    return Conflict(
        "An account with this email already exists. Sign in instead.",
        errors=[{"key": "email", "message": "An account with this email already exists."}],
    )


def object_id(user_id: str) -> PydanticObjectId | None:
    """The ``_id`` a user id names, or None for a string that is not one (which then matches no account)."""
    try:
        return PydanticObjectId(user_id)
    except (InvalidId, TypeError):
        return None

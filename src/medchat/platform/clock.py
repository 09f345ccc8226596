"""The one clock for stored times."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the millisecond: what MongoDB keeps, so a time read back (and a
    cursor built from it) compares equal to the one written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

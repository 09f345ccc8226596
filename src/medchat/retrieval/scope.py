"""Who is searching, and therefore which passages they may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Visibility = Literal["shared", "private"]


@dataclass(frozen=True, slots=True)
class SearchScope:
    """Sees every shared passage plus the user's own private ones.

    ``is_admin`` does not widen search: an admin's search never returns another user's private
    passages (admins manage documents through the document service, not through search).
    """

    user_id: str
    is_admin: bool = False

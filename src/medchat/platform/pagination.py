"""One cursor paginator for every newest-first list (conversations, documents, users, audit events).

A page is read with keyset pagination: sorted by a field (``_id`` by default) and then ``_id``, both
descending, and the cursor names the last item of the previous page. Cursors are opaque to clients
(URL-safe base64 of the sort value and the id); one this API did not hand out is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from beanie import Document
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING

from medchat.platform.errors import ValidationFailed

T = TypeVar("T")
U = TypeVar("U")
D = TypeVar("D", bound=Document)

MAX_PAGE_SIZE = 200
BAD_CURSOR = "cursor: not a cursor this API returned"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        return Page([convert(item) for item in self.items], self.next_cursor)


def _encode(sort_value: Any, identifier: ObjectId) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else None
    raw = json.dumps([value, str(identifier)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, *, by_time: bool) -> tuple[datetime | None, ObjectId]:
    try:
        value, identifier = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(value) if by_time else None
        return moment, ObjectId(identifier)
    except (ValueError, TypeError, InvalidId, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed(BAD_CURSOR) from None


def _after(field: str, cursor: str) -> dict[str, Any]:
    """The criteria for "older than the cursor's item" under the sort ``(field desc, _id desc)``."""
    moment, identifier = _decode(cursor, by_time=field != "_id")
    if field == "_id":
        return {"_id": {"$lt": identifier}}
    if moment is None:
        raise ValidationFailed(BAD_CURSOR)
    return {"$or": [{field: {"$lt": moment}}, {field: moment, "_id": {"$lt": identifier}}]}


async def paginate(
    model: type[D],
    criteria: Mapping[str, Any],
    *,
    limit: int,
    cursor: str | None = None,
    newest_by: str = "_id",
) -> Page[D]:
    """One page of ``model`` documents matching ``criteria``, newest first by ``newest_by`` (``_id``
    or a datetime field); ``limit`` is clamped to 1..``MAX_PAGE_SIZE``."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    query: dict[str, Any] = dict(criteria)
    if cursor:
        after = _after(newest_by, cursor)
        query = {"$and": [query, after]} if query else after
    order = [("_id", DESCENDING)] if newest_by == "_id" else [(newest_by, DESCENDING), ("_id", DESCENDING)]
    found = await model.find(query).sort(order).limit(limit + 1).to_list()
    items = found[:limit]
    last = items[-1] if len(found) > limit else None
    next_cursor = _encode(getattr(last, newest_by, None), last.id) if last is not None else None
    return Page(items, next_cursor)

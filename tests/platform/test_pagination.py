"""The one cursor paginator, against the test MongoDB: every item once, in order, under both sort keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from beanie import Document, init_beanie
from pymongo import AsyncMongoClient

from medchat.platform.clock import utcnow
from medchat.platform.errors import ValidationFailed
from medchat.platform.pagination import paginate


class Note(Document):
    owner: str
    touched_at: datetime

    class Settings:
        name = "pagination_notes"


@pytest.fixture
async def notes(store_urls: dict[str, str | None]) -> AsyncIterator[list[Note]]:
    client: AsyncMongoClient = AsyncMongoClient(store_urls["mongodb_uri"], tz_aware=True)
    database = client[f"test_{uuid.uuid4().hex[:12]}"]
    await init_beanie(database=database, document_models=[Note])
    start = utcnow()
    # Seven notes of one owner share a time in pairs, so ties are broken by id; one note is someone else's.
    made = [Note(owner="a", touched_at=start + timedelta(seconds=index // 2)) for index in range(7)]
    for note in made:
        await note.insert()
    await Note(owner="b", touched_at=start).insert()
    yield made
    await client.drop_database(database.name)
    await client.close()


async def _walk(limit: int, **options: str) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await paginate(Note, {"owner": "a"}, limit=limit, cursor=cursor, **options)
        pages.append([str(note.id) for note in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


async def test_pages_by_id_cover_every_item_once_newest_first(notes: list[Note]) -> None:
    pages = await _walk(3)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [item for page in pages for item in page] == [str(note.id) for note in reversed(notes)]


async def test_pages_by_a_time_field_break_ties_by_id(notes: list[Note]) -> None:
    pages = await _walk(2, newest_by="touched_at")

    expected = sorted(notes, key=lambda note: (note.touched_at, note.id), reverse=True)
    assert [item for page in pages for item in page] == [str(note.id) for note in expected]
    assert [len(page) for page in pages] == [2, 2, 2, 1]


async def test_a_cursor_this_api_did_not_hand_out_is_refused(notes: list[Note]) -> None:
    with pytest.raises(ValidationFailed):
        await paginate(Note, {"owner": "a"}, limit=2, cursor="not-a-cursor")
    with pytest.raises(ValidationFailed):
        await paginate(Note, {"owner": "a"}, limit=2, cursor=str(notes[0].id))

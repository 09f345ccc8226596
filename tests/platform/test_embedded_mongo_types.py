"""The embedded MongoDB keeps the BSON types of values written with ``$set``, as MongoDB does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from medchat.platform.clock import utcnow
from medchat.platform.embedded import EmbeddedMongo


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    server = EmbeddedMongo(Path(tmp_path_factory.mktemp("nx"))).start()
    try:
        with MongoClient(server.url, tz_aware=True) as client:
            yield client["types"]["records"]
    finally:
        server.stop()


def test_set_of_a_datetime_and_a_boolean_keeps_their_types(collection: Collection) -> None:
    collection.insert_one({"_id": "one", "disabled": False, "updated_at": datetime(2020, 1, 1, tzinfo=UTC)})
    now = utcnow()

    collection.update_one({"_id": "one"}, {"$set": {"disabled": True, "updated_at": now, "name": "x"}})

    stored = collection.find_one({"_id": "one"})
    assert stored is not None
    assert stored["disabled"] is True
    assert stored["updated_at"] == now
    assert stored["name"] == "x"
    assert collection.count_documents({"disabled": True}) == 1


def test_update_many_and_plain_values_still_work(collection: Collection) -> None:
    collection.insert_many([{"_id": f"m{i}", "used": False, "count": i} for i in range(3)])
    later = utcnow()

    collection.update_many({"_id": {"$in": ["m0", "m1"]}}, {"$set": {"used": True, "seen_at": later}})
    collection.update_one({"_id": "m2"}, {"$set": {"count": 42}, "$inc": {"count2": 1}})

    rows = {row["_id"]: row for row in collection.find({"_id": {"$in": ["m0", "m1", "m2"]}})}
    assert [rows["m0"]["used"], rows["m1"]["used"], rows["m2"]["used"]] == [True, True, False]
    assert rows["m0"]["seen_at"] == later
    assert rows["m2"]["count"] == 42
    assert rows["m2"]["count2"] == 1

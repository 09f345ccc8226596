"""MongoDB writes and reads are durable by default (settings mongodb_write_concern / mongodb_read_concern), and
the embedded nx-27017 store accepts them, so one client configuration serves a laptop and a replica set."""

from __future__ import annotations

import pytest

from medchat.platform.stores import Stores
from medchat.settings import Settings, SettingsError


async def test_the_client_writes_journaled_with_majority_and_reads_majority(settings: Settings):
    stores = await Stores.open(settings, document_models=[])
    try:
        collection = stores.database["durability_probe"]
        assert collection.write_concern.document == {"w": "majority", "j": True}
        assert collection.read_concern.level == "majority"
        await collection.insert_one({"_id": "probe", "value": 1})
        assert await collection.find_one({"_id": "probe"}) == {"_id": "probe", "value": 1}
    finally:
        await stores.close()


async def test_a_numeric_write_concern_counts_members(settings: Settings):
    stores = await Stores.open(settings.model_copy(update={"mongodb_write_concern": "1"}), document_models=[])
    try:
        assert stores.database["durability_probe"].write_concern.document == {"w": 1, "j": True}
    finally:
        await stores.close()


def test_an_unknown_write_concern_is_refused_at_start_up():
    with pytest.raises(SettingsError, match="MEDCHAT_MONGODB_WRITE_CONCERN"):
        Settings.load(mongodb_write_concern="most")

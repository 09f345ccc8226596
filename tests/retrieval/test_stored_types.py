"""What the document service writes with ``$set`` is stored with its BSON type, read back raw with PyMongo
(the embedded MongoDB once stored a ``$set`` datetime as a string)."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.retrieval.models import SourceDocument
from tests.support.accounts import RegisterUser
from tests.support.app import in_app_loop
from tests.support.documents import upload, wait_until_final


async def raw_document(client: AsyncTestClient[Litestar], document_id: str) -> dict:
    stored = await in_app_loop(client, SourceDocument.get_pymongo_collection().find_one({"_id": ObjectId(document_id)}))
    assert stored is not None
    return stored


async def test_status_changes_keep_updated_at_a_datetime(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    queued = await upload(client, user.headers, b"%PDF-1.7\n this is not really a pdf at all", filename="broken.pdf")
    inserted = await raw_document(client, queued["id"])

    assert (await wait_until_final(client, user.headers, queued["id"]))["status"] == "failed"
    failed = await raw_document(client, queued["id"])
    assert failed["status"] == "failed"
    assert isinstance(failed["updated_at"], datetime), repr(failed["updated_at"])
    assert isinstance(failed["created_at"], datetime)
    assert failed["updated_at"] > inserted["updated_at"]
    assert isinstance(failed["progress"], float) and type(failed["attempts"]) is int

    retried = await client.post(f"/api/v1/documents/{queued['id']}/retry", headers=user.headers)
    assert retried.status_code == 202
    requeued = await raw_document(client, queued["id"])
    assert isinstance(requeued["updated_at"], datetime) and requeued["updated_at"] >= failed["updated_at"]
    await wait_until_final(client, user.headers, queued["id"])

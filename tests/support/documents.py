"""The knowledge base through its JSON API: upload a file, wait for its ingestion to finish."""

from __future__ import annotations

import asyncio
import time

from litestar import Litestar
from litestar.testing import AsyncTestClient

INGESTION_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.05


async def upload(
    client: AsyncTestClient[Litestar],
    headers: dict[str, str],
    data: bytes,
    *,
    filename: str = "protocol.pdf",
    scope: str = "private",
) -> dict:
    response = await client.post(
        "/api/v1/documents/",
        files={"file": (filename, data, "application/octet-stream")},
        data={"scope": scope},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    return response.json()


async def wait_until_final(client: AsyncTestClient[Litestar], headers: dict[str, str], document_id: str) -> dict:
    """The document once its ingestion ended (``ready`` or ``failed``).

    A bounded poll of the document's status, as the UI does: the ingestion runs as an arq job in the app's
    in-process worker, and nothing the app exposes waits for one job.
    """
    deadline = time.monotonic() + INGESTION_TIMEOUT_SECONDS
    while True:
        document = (await client.get(f"/api/v1/documents/{document_id}", headers=headers)).json()
        if document["status"] in ("ready", "failed"):
            return document
        if time.monotonic() > deadline:
            status = document["status"]
            raise AssertionError(f"document {document_id} still {status} after {INGESTION_TIMEOUT_SECONDS} s")
        await asyncio.sleep(POLL_SECONDS)

"""Background jobs of the knowledge base, run by the arq worker."""

from __future__ import annotations

from typing import Any, Protocol

from arq import Retry

from medchat.retrieval.services import DocumentService, TransientIngestError

RETRY_DELAY_SECONDS = 5


class HasDocuments(Protocol):
    documents: DocumentService


async def ingest_document(ctx: dict[str, Any], document_id: str) -> None:
    """Parse, chunk, embed and index one uploaded document; retried with backoff when a store fails."""
    runtime: HasDocuments = ctx["runtime"]
    try:
        await runtime.documents.ingest(document_id)
    except TransientIngestError as error:
        raise Retry(defer=RETRY_DELAY_SECONDS * ctx.get("job_try", 1)) from error


JOB_FUNCTIONS = [ingest_document]

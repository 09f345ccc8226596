"""Background jobs of the knowledge base, run by the arq worker."""

from __future__ import annotations

from typing import Any, Protocol

from arq import Retry

from medchat.platform.registry import ServiceRegistry
from medchat.retrieval.ingestion import TransientIngestError
from medchat.retrieval.services import DocumentService

RETRY_DELAY_SECONDS = 5


class HasServices(Protocol):
    services: ServiceRegistry


async def ingest_document(ctx: dict[str, Any], document_id: str) -> None:
    """Parse, chunk, embed and index one uploaded document; retried with backoff when a store fails."""
    runtime: HasServices = ctx["runtime"]
    try:
        await runtime.services.get(DocumentService).ingest(document_id, job_id=ctx.get("job_id"))
    except TransientIngestError as error:
        raise Retry(defer=RETRY_DELAY_SECONDS * ctx.get("job_try", 1)) from error


JOB_FUNCTIONS = [ingest_document]

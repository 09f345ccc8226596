"""Background jobs of the knowledge base, run by the arq worker."""

from __future__ import annotations

from typing import Any, Protocol

from arq import Retry

from medchat.platform.job_context import continued_trace
from medchat.platform.registry import ServiceRegistry
from medchat.retrieval.ingestion import TransientIngestError
from medchat.retrieval.services import DocumentService

RETRY_DELAY_SECONDS = 5


class HasServices(Protocol):
    services: ServiceRegistry


async def ingest_document(ctx: dict[str, Any], document_id: str, trace_context: dict[str, str] | None = None) -> None:
    """Parse, chunk, embed and index one uploaded document; retried with backoff when a store fails.

    A small document is ingested in a batch with the small documents queued behind it, whose own jobs then
    find nothing to do (``batch_ingestion``).

    ``trace_context``: the W3C context of the request that queued the job, whose trace its spans join
    (jobs queued before it was carried, and requeued orphans, have none and start a trace of their own).
    """
    runtime: HasServices = ctx["runtime"]
    try:
        with continued_trace(trace_context):
            await runtime.services.get(DocumentService).ingest_queued(document_id, job_id=ctx.get("job_id"))
    except TransientIngestError as error:
        raise Retry(defer=RETRY_DELAY_SECONDS * ctx.get("job_try", 1)) from error


JOB_FUNCTIONS = [ingest_document]

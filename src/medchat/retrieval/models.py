"""The knowledge base's records in MongoDB: one ``SourceDocument`` per uploaded file."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from beanie import Document
from pydantic import Field
from pymongo import DESCENDING, IndexModel

from medchat.platform.clock import utcnow

DocumentStatus = Literal["queued", "processing", "ready", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"ready", "failed"})


class SourceDocument(Document):
    owner_id: str
    scope: Literal["shared", "private"]
    title: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    storage_key: str
    """Where the original file lives in the file store (relative, never a user-chosen path)."""
    status: DocumentStatus = "queued"
    stage: str | None = None
    """What ``processing`` is doing now: ``parsing``, ``embedding``."""
    progress: float = 0.0
    pages: int = 0
    chunks: int = 0
    error: str | None = None
    attempts: int = 0
    index_version: str = ""
    """``search.INDEX_VERSION`` of the passages it was last indexed with (``medchat reindex`` updates stale ones)."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    job_id: str | None = None
    """The ingestion job queued for it last; an older job that still runs for it stops (it was superseded)."""
    ingesting_instance: str | None = None
    """The instance (``platform.instances``) whose job is ``processing`` it; None on older documents."""

    class Settings:
        name = "documents"
        indexes = [  # noqa: RUF012 - Beanie reads this class attribute
            IndexModel([("owner_id", 1), ("created_at", DESCENDING)]),
            IndexModel([("scope", 1), ("created_at", DESCENDING)]),
        ]


document_models: list[type] = [SourceDocument]
"""For ``init_beanie``; the records themselves never leave the module (``DocumentView`` does)."""

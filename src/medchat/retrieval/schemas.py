"""The knowledge base's API shapes (``document``, search results) as API.md names them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar.datastructures import UploadFile

from medchat.platform.pagination import Page
from medchat.retrieval.search import Passage
from medchat.retrieval.services import DocumentView


@dataclass
class UploadForm:
    file: UploadFile
    scope: Literal["shared", "private"] = "private"


@dataclass
class FileForm:
    file: UploadFile


@dataclass(frozen=True)
class DocumentOut:
    id: str
    title: str
    filename: str
    media_type: str
    scope: str
    status: str
    stage: str | None
    progress: float
    pages: int
    chunks: int
    error: str | None
    size_bytes: int
    created_at: datetime
    file_url: str

    @classmethod
    def of(cls, view: DocumentView) -> DocumentOut:
        return cls(
            id=view.id,
            title=view.title,
            filename=view.filename,
            media_type=view.media_type,
            scope=view.scope,
            status=view.status,
            stage=view.stage,
            progress=view.progress,
            pages=view.pages,
            chunks=view.chunks,
            error=view.error,
            size_bytes=view.size_bytes,
            created_at=view.created_at,
            file_url=f"/documents/{view.id}/file",
        )


@dataclass(frozen=True)
class DocumentPageOut:
    items: list[DocumentOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[DocumentView]) -> DocumentPageOut:
        return cls(items=[DocumentOut.of(view) for view in page.items], next_cursor=page.next_cursor)


class SearchIn(msgspec.Struct):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None


@dataclass(frozen=True)
class SearchResultOut:
    document_id: str
    title: str
    page: int
    section: str
    snippet: str
    score: float
    chunk_id: str
    url: str

    @classmethod
    def of(cls, passage: Passage) -> SearchResultOut:
        return cls(
            document_id=passage.document_id,
            title=passage.title,
            page=passage.page,
            section=passage.section,
            snippet=passage.snippet,
            score=passage.score,
            chunk_id=passage.chunk_id,
            url=f"/documents/{passage.document_id}/file#page={passage.page}",
        )


@dataclass(frozen=True)
class SearchOut:
    results: list[SearchResultOut] = field(default_factory=list)


@dataclass(frozen=True)
class TextOut:
    text: str

"""The knowledge base's JSON API: documents, search, OCR and speech, and the original files."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, HeaderParameter, JSONBody, Parameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_206_PARTIAL_CONTENT,
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
)

from medchat.platform.errors import PayloadTooLarge, ValidationFailed
from medchat.platform.identity import Principal, require_user
from medchat.platform.openapi import BEARER, problem_responses
from medchat.retrieval.body_limit import media_limit, upload_limit
from medchat.retrieval.byte_ranges import RangeNotSatisfiable, requested_range
from medchat.retrieval.parsing.detection import AUDIO_TYPES
from medchat.retrieval.schemas import (
    DocumentOut,
    DocumentPageOut,
    FileForm,
    SearchIn,
    SearchOut,
    SearchResultOut,
    TextOut,
    UploadForm,
)
from medchat.retrieval.search import Retriever, SearchScope
from medchat.retrieval.services import DocumentService, OriginalFile

MB = 1024 * 1024
UPLOAD_BODY_LIMIT = 512 * MB
"""The framework's ceiling; ``upload_limit`` and ``media_limit`` refuse by the configured sizes before it."""
MEDIA_BODY_LIMIT = UPLOAD_BODY_LIMIT
# Shown inline only where the browser renders them safely; anything else downloads (an uploaded HTML
# file served inline would run in our origin).
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "text/plain", *AUDIO_TYPES})


async def read_upload(upload: UploadFile, *, limit_mb: int) -> bytes:
    data = await upload.read()
    if len(data) > limit_mb * MB:
        raise PayloadTooLarge(f"The file is larger than {limit_mb} MB.")
    return data


def content_disposition(disposition: str, filename: str) -> str:
    """``filename=`` in ASCII for old clients and ``filename*=`` (RFC 6266/5987) with the name in UTF-8."""
    fallback = "".join(char if " " <= char <= "~" and char not in '"\\' else "_" for char in filename) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def original_file_response(original: OriginalFile, *, range_header: str | None = None) -> Response[Any]:
    """The file streamed from its store: whole (200), or the one byte range asked (206, which a PDF viewer
    uses to open a large file at its page), or 416 for a range past its end."""
    inline = original.media_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(disposition, original.filename),
        "Cache-Control": "private, no-store",
        # A PDF viewer needs plugin frames; nothing else from this response may run.
        "Content-Security-Policy": "default-src 'none'; object-src 'self'; plugin-types application/pdf; "
        "style-src 'unsafe-inline'; sandbox allow-scripts",
    }
    try:
        wanted = requested_range(range_header, total=original.length)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{original.length}"
        return Response(b"", status_code=HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE, headers=headers)
    if wanted is None:
        headers["Content-Length"] = str(original.length)
        body, status_code = original.stream(), HTTP_200_OK
    else:
        headers["Content-Length"] = str(wanted.length)
        headers["Content-Range"] = wanted.content_range(original.length)
        body, status_code = original.stream(wanted.start, wanted.end), HTTP_206_PARTIAL_CONTENT
    media_type = original.media_type if inline else "application/octet-stream"
    return Stream(body, status_code=status_code, media_type=media_type, headers=headers)


class DocumentController(Controller):
    path = "/api/v1/documents"
    tags = ["knowledge base"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_user]  # noqa: RUF012
    security = BEARER

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        middleware=[upload_limit],
        summary="Upload a document; it is ingested in the background",
        responses=problem_responses(400, 401, 403, 413, 415, 503),
    )
    async def upload(
        self,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> DocumentOut:
        view = await documents.upload(
            owner=current_user, filename=data.file.filename, data=data.file.file, scope=data.scope, ip=client_ip
        )
        return DocumentOut.of(view)

    @get(
        "/",
        summary="Documents you can see: shared ones and your own private ones, newest first",
        responses=problem_responses(400, 401, 503),
    )
    async def list_documents(
        self,
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        status: Annotated[str | None, Parameter(pattern="^(queued|processing|ready|failed)$")] = None,
    ) -> DocumentPageOut:
        return DocumentPageOut.of(await documents.list_visible(current_user, limit=limit, cursor=cursor, status=status))

    @get("/{document_id:str}", responses=problem_responses(401, 404, 503))
    async def get_document(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> DocumentOut:
        return DocumentOut.of(await documents.get_visible(current_user, document_id=document_id))

    @post(
        "/{document_id:str}/retry",
        status_code=HTTP_202_ACCEPTED,
        summary="Queue a failed document again",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def retry(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> DocumentOut:
        return DocumentOut.of(await documents.retry(current_user, document_id=document_id))

    @delete(
        "/{document_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a document and its passages",
        responses=problem_responses(401, 403, 404, 503),
    )
    async def delete_document(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await documents.delete(current_user, document_id=document_id, ip=client_ip)


class SearchController(Controller):
    path = "/api/v1"
    tags = ["knowledge base"]  # noqa: RUF012
    guards = [require_user]  # noqa: RUF012
    security = BEARER

    @post(
        "/search",
        status_code=HTTP_200_OK,
        summary="Hybrid search over the passages you can see",
        responses=problem_responses(400, 401, 413, 503),
    )
    async def search(
        self,
        data: JSONBody[SearchIn],
        current_user: NamedDependency[Principal],
        retriever: NamedDependency[Retriever],
    ) -> SearchOut:
        if not data.query.strip():
            raise ValidationFailed("query: must not be blank")
        scope = SearchScope(user_id=current_user.id, is_admin=current_user.is_admin)
        passages = await retriever.search(data.query, scope=scope, top_k=data.top_k)
        return SearchOut(results=[SearchResultOut.of(passage) for passage in passages])

    @post(
        "/ocr",
        status_code=HTTP_200_OK,
        request_max_body_size=MEDIA_BODY_LIMIT,
        middleware=[media_limit],
        summary="Text from an image (per-user hourly limit; 503 busy while every reader is taken)",
        responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
    )
    async def ocr(
        self,
        data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> TextOut:
        content = await read_upload(data.file, limit_mb=documents.max_media_mb)
        text = await documents.extract_text(
            current_user, content, kind="image", refused="OCR needs a PNG, JPEG or TIFF image."
        )
        return TextOut(text=text)

    @post(
        "/voice",
        status_code=HTTP_200_OK,
        request_max_body_size=MEDIA_BODY_LIMIT,
        middleware=[media_limit],
        summary="Text from speech (per-user hourly limit; 503 busy while every reader is taken)",
        responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
    )
    async def voice(
        self,
        data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> TextOut:
        content = await read_upload(data.file, limit_mb=documents.max_media_mb)
        text = await documents.extract_text(
            current_user, content, kind="speech", refused="Speech recognition needs WAV, MP3, OGG, WebM or M4A audio."
        )
        return TextOut(text=text)


class OriginalFileController(Controller):
    path = "/documents"
    include_in_schema = False
    guards = [require_user]  # noqa: RUF012

    @get("/{document_id:str}/file", summary="The original file, to check a citation against")
    async def original(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
    ) -> Response[Any]:
        original = await documents.original(current_user, document_id=document_id, ip=client_ip)
        return original_file_response(original, range_header=range_header)

"""The knowledge base's JSON API: documents, search, OCR and speech, and the original files."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from medchat.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from medchat.platform.identity import Principal, require_user
from medchat.retrieval.parsing import detect_media_type, ocr_image, transcribe
from medchat.retrieval.parsing.detection import AUDIO_TYPES, IMAGE_TYPES
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
"""The framework's hard cap; the configured ``max_upload_mb`` is checked on the bytes by the service."""
MEDIA_BODY_LIMIT = 25 * MB
# Shown inline only where the browser renders them safely; anything else downloads (an uploaded HTML
# file served inline would run in our origin).
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "text/plain", *AUDIO_TYPES})


async def read_upload(upload: UploadFile, *, limit_mb: int) -> bytes:
    data = await upload.read()
    if len(data) > limit_mb * MB:
        raise PayloadTooLarge(f"The file is larger than {limit_mb} MB.")
    return data


def original_file_response(original: OriginalFile) -> Response[bytes]:
    inline = original.media_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    quoted = original.filename.replace('"', "")
    return Response(
        original.data,
        media_type=original.media_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f'{disposition}; filename="{quoted}"',
            "Cache-Control": "private, no-store",
            # A PDF viewer needs plugin frames; nothing else from this response may run.
            "Content-Security-Policy": "default-src 'none'; object-src 'self'; plugin-types application/pdf; "
            "style-src 'unsafe-inline'; sandbox allow-scripts",
        },
    )


class DocumentController(Controller):
    path = "/api/v1/documents"
    tags = ["knowledge base"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_user]  # noqa: RUF012

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        summary="Upload a document; it is ingested in the background",
    )
    async def upload(
        self,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> DocumentOut:
        content = await data.file.read()
        view = await documents.upload(
            owner=current_user, filename=data.file.filename, data=content, scope=data.scope, ip=client_ip
        )
        return DocumentOut.of(view)

    @get("/", summary="Documents you can see: shared ones and your own private ones, newest first")
    async def list_documents(
        self,
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        status: Annotated[str | None, Parameter(pattern="^(queued|processing|ready|failed)$")] = None,
    ) -> DocumentPageOut:
        return DocumentPageOut.of(await documents.list_visible(current_user, limit=limit, cursor=cursor, status=status))

    @get("/{document_id:str}")
    async def get_document(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> DocumentOut:
        return DocumentOut.of(await documents.get_visible(current_user, document_id=document_id))

    @post("/{document_id:str}/retry", status_code=HTTP_202_ACCEPTED, summary="Queue a failed document again")
    async def retry(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> DocumentOut:
        return DocumentOut.of(await documents.retry(current_user, document_id=document_id))

    @delete("/{document_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete a document and its passages")
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

    @post("/search", status_code=HTTP_200_OK, summary="Hybrid search over the passages you can see")
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

    @post("/ocr", status_code=HTTP_200_OK, request_max_body_size=MEDIA_BODY_LIMIT, summary="Text from an image")
    async def ocr(self, data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]) -> TextOut:
        content = await read_upload(data.file, limit_mb=MEDIA_BODY_LIMIT // MB)
        if detect_media_type(content) not in IMAGE_TYPES:
            raise UnsupportedMediaType("OCR needs a PNG, JPEG or TIFF image.")
        return TextOut(text=await asyncio.to_thread(ocr_image, content))

    @post("/voice", status_code=HTTP_200_OK, request_max_body_size=MEDIA_BODY_LIMIT, summary="Text from speech")
    async def voice(self, data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]) -> TextOut:
        content = await read_upload(data.file, limit_mb=MEDIA_BODY_LIMIT // MB)
        if detect_media_type(content) not in AUDIO_TYPES:
            raise UnsupportedMediaType("Speech recognition needs WAV, MP3, OGG, WebM or M4A audio.")
        return TextOut(text=await asyncio.to_thread(transcribe, content))


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
    ) -> Response[bytes]:
        original = await documents.original(current_user, document_id=document_id, ip=client_ip)
        return original_file_response(original)

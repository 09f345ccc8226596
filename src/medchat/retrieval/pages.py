"""The knowledge-base page (documents with live status, upload by drag and drop, delete, retry) and the
chat composer's helpers: text from an image (OCR) or from a recording (speech), for the signed-in UI.

The composer's helpers are page routes, not the API's ``/api/v1/ocr`` and ``/api/v1/voice``: those take
bearer tokens only, while the UI has its session cookie and CSRF token. With HTMX (the composer's script
sends ``HX-Request``) they answer a fragment holding the text; without JavaScript, a page that puts the
text in a question form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate

from medchat.platform.errors import ClientError, UnsupportedMediaType
from medchat.platform.identity import Principal, require_user
from medchat.retrieval.parsing import detect_media_type, ocr_image, transcribe
from medchat.retrieval.parsing.detection import AUDIO_TYPES, IMAGE_TYPES
from medchat.retrieval.routes import MB, MEDIA_BODY_LIMIT, UPLOAD_BODY_LIMIT, read_upload
from medchat.retrieval.schemas import UploadForm
from medchat.retrieval.services import DocumentService, DocumentView

POLL_SECONDS = 1.5
VARY = {"Vary": "HX-Request"}
IMAGE_REFUSED = "Choose a PNG, JPEG or TIFF image to read its text."
AUDIO_REFUSED = "The recording must be WAV, MP3, OGG, WebM or M4A audio."

MediaKind = Literal["image", "recording"]


@dataclass
class MediaForm:
    file: UploadFile
    conversation_id: str = ""
    """Carried through to the no-JavaScript page, so the question goes on in the same conversation."""


async def _extract(data: MediaForm, *, accepted: Collection[str], refused: str, extract: Callable[[bytes], str]) -> str:
    content = await read_upload(data.file, limit_mb=MEDIA_BODY_LIMIT // MB)
    try:
        media_type = detect_media_type(content)
    except UnsupportedMediaType:
        media_type = None
    if media_type not in accepted:
        raise UnsupportedMediaType(refused)
    return (await asyncio.to_thread(extract, content)).strip()


def _wants_fragment(request: HTMXRequest) -> bool:
    """An HTMX request for a part of the page; a boosted link or form wants the whole page."""
    return bool(request.htmx) and not request.htmx.boosted


def _extracted(request: HTMXRequest, *, text: str, kind: MediaKind, data: MediaForm) -> HTMXTemplate:
    context = {"text": text, "kind": kind, "conversation_id": data.conversation_id[:64]}
    template = "retrieval/_extracted.html" if _wants_fragment(request) else "retrieval/extracted.html"
    return HTMXTemplate(template_name=template, context=context, headers=VARY)


def _list_context(documents: list[DocumentView], viewer: Principal, **extra: object) -> dict[str, object]:
    return {
        "documents": documents,
        "viewer": viewer,
        "polling": any(not document.is_final for document in documents),
        "poll_seconds": POLL_SECONDS,
        **extra,
    }


class KnowledgeBasePages(Controller):
    path = "/documents"
    include_in_schema = False
    guards = [require_user]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/")
    async def page(
        self,
        request: HTMXRequest,
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> HTMXTemplate:
        listed = (await documents.list_visible(current_user, limit=200)).items
        if _wants_fragment(request):  # the live status poll swaps only the list
            return HTMXTemplate(
                template_name="retrieval/_document_list.html",
                context=_list_context(listed, current_user),
                headers=VARY,
            )
        return HTMXTemplate(
            template_name="retrieval/documents.html",
            context=_list_context(listed, current_user, max_upload_mb=documents.max_upload_mb),
            headers=VARY,
        )

    @post("/", request_max_body_size=UPLOAD_BODY_LIMIT)
    async def upload(
        self,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> HTMXTemplate:
        error = None
        try:
            await documents.upload(
                owner=current_user,
                filename=data.file.filename,
                data=await data.file.read(),
                scope=data.scope,
                ip=client_ip,
            )
        except ClientError as refused:
            error = refused
        listed = (await documents.list_visible(current_user, limit=200)).items
        return HTMXTemplate(
            template_name="retrieval/_document_list.html",
            context=_list_context(listed, current_user, upload_error=error),
            status_code=400 if error and error.status < 500 else 200,
        )

    @post("/{document_id:str}/delete")
    async def delete(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> HTMXTemplate:
        await documents.delete(current_user, document_id, ip=client_ip)
        listed = (await documents.list_visible(current_user, limit=200)).items
        return HTMXTemplate(template_name="retrieval/_document_list.html", context=_list_context(listed, current_user))

    @post("/ocr", request_max_body_size=MEDIA_BODY_LIMIT)
    async def ocr(
        self, request: HTMXRequest, data: Annotated[MediaForm, Body(media_type=RequestEncodingType.MULTI_PART)]
    ) -> HTMXTemplate:
        """The text of an image, for the composer (``415`` for anything but PNG, JPEG or TIFF)."""
        text = await _extract(data, accepted=IMAGE_TYPES, refused=IMAGE_REFUSED, extract=ocr_image)
        return _extracted(request, text=text, kind="image", data=data)

    @post("/voice", request_max_body_size=MEDIA_BODY_LIMIT)
    async def voice(
        self, request: HTMXRequest, data: Annotated[MediaForm, Body(media_type=RequestEncodingType.MULTI_PART)]
    ) -> HTMXTemplate:
        """The words of a recording (the composer's microphone sends WebM or OGG), for the composer."""
        text = await _extract(data, accepted=AUDIO_TYPES, refused=AUDIO_REFUSED, extract=transcribe)
        return _extracted(request, text=text, kind="recording", data=data)

    @post("/{document_id:str}/retry")
    async def retry(
        self,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> HTMXTemplate:
        await documents.retry(current_user, document_id)
        listed = (await documents.list_visible(current_user, limit=200)).items
        return HTMXTemplate(template_name="retrieval/_document_list.html", context=_list_context(listed, current_user))

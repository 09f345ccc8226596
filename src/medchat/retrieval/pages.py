"""The knowledge-base page (documents with live status, upload by drag and drop, delete, retry) and the
chat composer's helpers: text from an image (OCR) or from a recording (speech), for the signed-in UI.

With HTMX the forms swap the document list; without JavaScript (or boosted) they redirect back to the page
(Post/Redirect/Get), which says what was done. A refused upload shows the page (or the list) with the reason.

The composer's helpers are page routes, not the API's ``/api/v1/ocr`` and ``/api/v1/voice``: those take
bearer tokens only, while the UI has its session cookie and CSRF token. With HTMX (the composer's script
sends ``HX-Request``) they answer a fragment holding the text; without JavaScript, a page that puts the
text in a question form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Redirect
from litestar.status_codes import HTTP_303_SEE_OTHER

from medchat.platform.errors import ClientError
from medchat.platform.identity import Principal, require_user
from medchat.platform.web import VARY_ON_HTMX, page_or_fragment, wants_fragment
from medchat.retrieval.body_limit import media_limit, upload_limit
from medchat.retrieval.routes import MEDIA_BODY_LIMIT, UPLOAD_BODY_LIMIT, read_upload
from medchat.retrieval.schemas import UploadForm
from medchat.retrieval.services import DocumentService, DocumentView

POLL_SECONDS = 1.5
LISTED = 200
PAGE = "retrieval/documents.html"
LIST = "retrieval/_document_list.html"
NOTICES = {
    "uploaded": "The document was uploaded; it is being read now.",
    "retried": "The document was queued again.",
    "deleted": "The document was deleted.",
}
"""What the page says after a form without JavaScript (``?done=`` names one; any other value says nothing)."""
IMAGE_REFUSED = "Choose a PNG, JPEG or TIFF image to read its text."
AUDIO_REFUSED = "The recording must be WAV, MP3, OGG, WebM or M4A audio."

MediaKind = Literal["image", "recording"]


@dataclass
class MediaForm:
    file: UploadFile
    conversation_id: str = ""
    """Carried through to the no-JavaScript page, so the question goes on in the same conversation."""


def _extracted(request: HTMXRequest, *, text: str, kind: MediaKind, data: MediaForm) -> HTMXTemplate:
    context = {"text": text, "kind": kind, "conversation_id": data.conversation_id[:64]}
    return page_or_fragment(
        request, page="retrieval/extracted.html", fragment="retrieval/_extracted.html", context=context
    )


def _list_context(documents: list[DocumentView], viewer: Principal, **extra: object) -> dict[str, object]:
    return {
        "documents": documents,
        "viewer": viewer,
        "polling": any(not document.is_final for document in documents),
        "poll_seconds": POLL_SECONDS,
        **extra,
    }


async def _documents(
    request: HTMXRequest, documents: DocumentService, viewer: Principal, *, status_code: int = 200, **extra: object
) -> HTMXTemplate:
    """The documents page, or only its list for an HTMX swap (the live status poll, the forms with JavaScript)."""
    listed = (await documents.list_visible(viewer, limit=LISTED)).items
    context = _list_context(listed, viewer, max_upload_mb=documents.max_upload_mb, **extra)
    return page_or_fragment(request, page=PAGE, fragment=LIST, context=context, status_code=status_code)


async def _after_change(
    request: HTMXRequest, documents: DocumentService, viewer: Principal, *, done: str
) -> Response[Any]:
    """A form's answer once its change is made: the list for an HTMX swap; otherwise Post/Redirect/Get back to
    the page, which says what was done (so reloading it does not post the form again)."""
    if wants_fragment(request):
        return await _documents(request, documents, viewer)
    return Redirect("/documents", query_params={"done": done}, status_code=HTTP_303_SEE_OTHER)


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
        done: FromQuery[str | None] = None,
    ) -> HTMXTemplate:
        return await _documents(request, documents, current_user, notice=NOTICES.get(done or ""))

    @post("/", request_max_body_size=UPLOAD_BODY_LIMIT, middleware=[upload_limit])
    async def upload(
        self,
        request: HTMXRequest,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        try:
            await documents.upload(
                owner=current_user,
                filename=data.file.filename,
                data=data.file.file,
                scope=data.scope,
                ip=client_ip,
            )
        except ClientError as refused:  # shown in the list (or the page), beside the form to try again
            return await _documents(request, documents, current_user, status_code=400, upload_error=refused)
        return await _after_change(request, documents, current_user, done="uploaded")

    @post("/{document_id:str}/delete")
    async def delete(
        self,
        request: HTMXRequest,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        await documents.delete(current_user, document_id=document_id, ip=client_ip)
        return await _after_change(request, documents, current_user, done="deleted")

    @post("/ocr", request_max_body_size=MEDIA_BODY_LIMIT, middleware=[media_limit])
    async def ocr(
        self,
        request: HTMXRequest,
        data: Annotated[MediaForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> HTMXTemplate:
        """The text of an image, for the composer (``415`` for anything but PNG, JPEG or TIFF)."""
        content = await read_upload(data.file, limit_mb=documents.max_media_mb)
        text = await documents.extract_text(current_user, content, kind="image", refused=IMAGE_REFUSED)
        return _extracted(request, text=text, kind="image", data=data)

    @post("/voice", request_max_body_size=MEDIA_BODY_LIMIT, middleware=[media_limit])
    async def voice(
        self,
        request: HTMXRequest,
        data: Annotated[MediaForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> HTMXTemplate:
        """The words of a recording (the composer's microphone sends WebM or OGG), for the composer."""
        content = await read_upload(data.file, limit_mb=documents.max_media_mb)
        text = await documents.extract_text(current_user, content, kind="speech", refused=AUDIO_REFUSED)
        return _extracted(request, text=text, kind="recording", data=data)

    @post("/{document_id:str}/retry")
    async def retry(
        self,
        request: HTMXRequest,
        document_id: FromPath[str],
        current_user: NamedDependency[Principal],
        documents: NamedDependency[DocumentService],
    ) -> Response[Any]:
        await documents.retry(current_user, document_id=document_id)
        return await _after_change(request, documents, current_user, done="retried")


pages_router = Router(path="/", route_handlers=[KnowledgeBasePages], response_headers=VARY_ON_HTMX)
"""The knowledge base's pages: each URL answers a page or an HTMX fragment, so responses vary on ``HX-Request``."""

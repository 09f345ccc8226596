"""The knowledge-base page: documents with live status, upload (drag and drop), delete, retry."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate

from medchat.platform import audit
from medchat.platform.errors import ClientError
from medchat.platform.identity import Principal, require_user
from medchat.retrieval.routes import UPLOAD_BODY_LIMIT
from medchat.retrieval.schemas import UploadForm
from medchat.retrieval.services import DocumentService, DocumentView

POLL_SECONDS = 1.5


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
        if request.htmx:  # the live status poll swaps only the list
            return HTMXTemplate(
                template_name="retrieval/_document_list.html", context=_list_context(listed, current_user)
            )
        return HTMXTemplate(
            template_name="retrieval/documents.html",
            context=_list_context(listed, current_user, max_upload_mb=documents.max_upload_mb),
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
            view = await documents.upload(
                owner=current_user, filename=data.file.filename, data=await data.file.read(), scope=data.scope
            )
        except ClientError as refused:
            error = refused
        else:
            await audit.record(
                "create",
                actor_id=current_user.id,
                resource_type="document",
                resource_id=view.id,
                ip=client_ip,
                scope=view.scope,
                media_type=view.media_type,
            )
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
        await documents.delete(current_user, document_id)
        await audit.record(
            "delete", actor_id=current_user.id, resource_type="document", resource_id=document_id, ip=client_ip
        )
        listed = (await documents.list_visible(current_user, limit=200)).items
        return HTMXTemplate(template_name="retrieval/_document_list.html", context=_list_context(listed, current_user))

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

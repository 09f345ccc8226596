"""Upload size limits from the settings, enforced before a body is read: by ``Content-Length`` when the client
announces one, and on the bytes as they stream in otherwise (a chunked body), so a too-large upload is refused
with 413 ``payload_too_large`` without being held in memory or spooled to disk.

Route-level middleware runs before the CSRF check, which would otherwise read a form's whole body first.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from medchat.platform.errors import PayloadTooLarge
from medchat.platform.registry import registry_of
from medchat.retrieval.services import DocumentService

MB = 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the multipart boundaries and the form's other fields around the file itself."""


class BodyLimit(ASGIMiddleware):
    def __init__(self, limit_mb: Callable[[DocumentService], int]) -> None:
        self._limit_mb = limit_mb

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        limit_mb = self._limit_mb(registry_of(scope["litestar_app"].state).get(DocumentService))
        limit = limit_mb * MB + FORM_OVERHEAD_BYTES
        refused = PayloadTooLarge(f"The file is larger than the {limit_mb} MB limit.")
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            raise refused
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise refused
            return message

        await next_app(scope, counted, send)


upload_limit = BodyLimit(lambda documents: documents.max_upload_mb)
"""For document uploads: ``MEDCHAT_MAX_UPLOAD_MB``."""
media_limit = BodyLimit(lambda documents: documents.max_media_mb)
"""For OCR and speech: ``MEDCHAT_MAX_MEDIA_MB``."""

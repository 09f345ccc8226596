"""Errors of the retrieval module, in the platform's hierarchy (so they map to problem+json)."""

from __future__ import annotations

from medchat.platform.errors import ClientError


class UnreadableDocument(ClientError):
    """The bytes have a supported type but could not be read (corrupt, encrypted, no decodable content)."""

    status = 422
    code = "unreadable_document"
    title = "The document could not be read"

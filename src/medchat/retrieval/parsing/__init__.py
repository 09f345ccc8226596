"""Turn uploaded bytes into text: type detection, document parsers, OCR and speech recognition.

Everything here is synchronous and CPU-heavy. Plain text and Markdown (linear in the upload's size) may
run in a thread; every other parser, OCR and speech run through ``HeavyWork``, in a limited child process.

The parsers' libraries (PDF, Word, HTML, OCR, speech) are imported by the call that needs them, not with this
package: a web process that never parses such a file never holds them (about 40 MB).
"""

from __future__ import annotations

from medchat.retrieval.document import ParsedDocument, ParsedPage
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.parsing import detection
from medchat.retrieval.parsing.archive import ArchiveLimits
from medchat.retrieval.parsing.detection import decode_text, detect_media_type
from medchat.retrieval.parsing.markup import first_heading_or_line, markdown_pages, plain_text_pages
from medchat.retrieval.parsing.workers import HeavyWork, WorkerLimits

__all__ = [
    "IN_PROCESS_TYPES",
    "ArchiveLimits",
    "HeavyWork",
    "WorkerLimits",
    "detect_media_type",
    "ocr_image",
    "parse_document",
    "transcribe",
]

IN_PROCESS_TYPES = frozenset({detection.PLAIN_TEXT, detection.MARKDOWN})
"""Parsed in time and memory linear in the upload's size: no worker process needed."""


def parse_document(data: bytes, archive_limits: ArchiveLimits | None = None) -> ParsedDocument:
    """Detect the type of ``data`` and extract its pages. Raises ``UnsupportedMediaType`` or ``UnreadableDocument``."""
    media_type = detect_media_type(data)
    title, pages = _parse(data, media_type, archive_limits or ArchiveLimits())
    title = title or first_heading_or_line(pages)
    return ParsedDocument(title=title, pages=pages, media_type=media_type)


def ocr_image(data: bytes) -> str:
    """The text of an image (every frame of a multi-page TIFF), by Tesseract."""
    from medchat.retrieval.parsing.ocr import ocr_image as recognise

    return recognise(data)


def transcribe(audio: bytes) -> str:
    """The words spoken in a recording, by the bundled Whisper model."""
    from medchat.retrieval.parsing.speech import transcribe as recognise

    return recognise(audio)


def _parse(data: bytes, media_type: str, archive_limits: ArchiveLimits) -> tuple[str | None, tuple[ParsedPage, ...]]:
    if media_type == detection.PDF:
        from medchat.retrieval.parsing.pdf import parse_pdf

        return parse_pdf(data)
    if media_type == detection.DOCX:
        from medchat.retrieval.parsing.office import parse_docx

        return parse_docx(data, archive_limits)
    if media_type in detection.IMAGE_TYPES:
        from medchat.retrieval.parsing.ocr import image_pages_text

        return None, tuple(ParsedPage(number, text) for number, text in enumerate(image_pages_text(data), start=1))
    if media_type in detection.AUDIO_TYPES:
        return None, (ParsedPage(1, transcribe(data)),)
    text = decode_text(data)
    if text is None:
        raise UnreadableDocument("the text could not be decoded")
    if media_type == detection.HTML:
        from medchat.retrieval.parsing.html import parse_html

        return parse_html(text)
    if media_type == detection.MARKDOWN:
        return None, markdown_pages(text)
    return None, plain_text_pages(text)

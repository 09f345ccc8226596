"""PDF: the text layer page by page (pypdf); pages without one are rendered (pypdfium2) and OCRed.

Headings come from the PDF outline (bookmarks) where a bookmark's title starts a line of its page.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pypdf
import pypdfium2
import structlog
from pypdf.errors import PyPdfError

from medchat.retrieval.document import Heading, ParsedPage
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.parsing.ocr import ocr

MIN_TEXT_LAYER_CHARS = 25
"""A page whose text layer has fewer visible characters than this is treated as scanned."""
OCR_DPI = 300

log = structlog.get_logger(__name__)
_PDFIUM_LOCK = threading.Lock()
"""PDFium is not thread-safe; every render in the process goes through this lock."""


def parse_pdf(data: bytes) -> tuple[str | None, tuple[ParsedPage, ...]]:
    """(title from the metadata, pages)."""
    reader = _open(data)
    outline = _outline_by_page(reader)
    texts = [_text_layer(page) for page in reader.pages]
    scanned = [index for index, text in enumerate(texts) if len("".join(text.split())) < MIN_TEXT_LAYER_CHARS]
    if scanned:
        for index, text in zip(scanned, _ocr_pages(data, scanned), strict=True):
            texts[index] = text
    pages = tuple(
        ParsedPage(index + 1, text, _headings_in(text, outline.get(index, []))) for index, text in enumerate(texts)
    )
    title = reader.metadata.title if reader.metadata and reader.metadata.title else None
    return (title.strip() or None) if title else None, pages


def _open(data: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("the PDF is encrypted with a password")
        _ = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, OSError) as error:
        raise UnreadableDocument(f"the PDF could not be read: {error}") from error
    return reader


def _text_layer(page: pypdf.PageObject) -> str:
    try:
        return page.extract_text() or ""
    except Exception as error:  # noqa: BLE001 - pypdf raises many kinds on broken content streams
        log.warning("pdf text extraction failed, falling back to OCR", error=str(error))
        return ""


def _ocr_pages(data: bytes, indexes: list[int]) -> Iterator[str]:
    for index in indexes:
        with _PDFIUM_LOCK:
            document = pypdfium2.PdfDocument(data)
            try:
                image = document[index].render(scale=OCR_DPI / 72).to_pil()
            finally:
                document.close()
        yield ocr(image)


def _outline_by_page(reader: pypdf.PdfReader) -> dict[int, list[tuple[int, str]]]:
    by_page: dict[int, list[tuple[int, str]]] = {}

    def walk(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page_index = reader.get_destination_page_number(item)
            except (PyPdfError, KeyError, ValueError, AttributeError):
                continue
            title = str(getattr(item, "title", "") or "").strip()
            if title and page_index is not None and page_index >= 0:
                by_page.setdefault(page_index, []).append((level, title))

    try:
        walk(reader.outline, 1)
    except (PyPdfError, KeyError, ValueError, AttributeError):
        return {}
    return by_page


def _headings_in(text: str, entries: list[tuple[int, str]]) -> tuple[Heading, ...]:
    headings: list[Heading] = []
    lowered = text.casefold()
    for level, title in entries:
        offset = lowered.find(title.casefold())
        if offset < 0 or (offset > 0 and text[offset - 1] != "\n"):
            continue
        line_end = text.find("\n", offset)
        line = text[offset : len(text) if line_end < 0 else line_end]
        if line.strip().casefold() == title.casefold():
            headings.append(Heading(offset, level, title))
    return tuple(sorted(headings, key=lambda h: h.offset))

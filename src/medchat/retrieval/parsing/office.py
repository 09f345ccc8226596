"""DOCX with python-docx: paragraphs and tables in body order; Heading/Title styles become headings.

Explicit page breaks start a new page; Word's layout pages are not known without rendering.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import LxmlError

from medchat.retrieval.document import Heading, ParsedPage
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.parsing.archive import ArchiveLimits, check_archive

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_PAGE_BREAK = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}br"
_BREAK_TYPE = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}type"


def parse_docx(data: bytes, limits: ArchiveLimits) -> tuple[str | None, tuple[ParsedPage, ...]]:
    check_archive(data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, LxmlError) as error:
        raise UnreadableDocument(f"the DOCX could not be read: {error}") from error
    pages: list[ParsedPage] = []
    lines: list[str] = []
    headings: list[Heading] = []
    offset = 0

    def close_page() -> None:
        nonlocal lines, headings, offset
        pages.append(ParsedPage(len(pages) + 1, "\n".join(lines), tuple(headings)))
        lines, headings, offset = [], [], 0

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            text = _table_text(block)
            level = 0
        else:
            text = block.text.strip()
            level = _heading_level(block)
            if _has_page_break(block) and lines:
                close_page()
        if not text:
            continue
        if level:
            headings.append(Heading(offset, level, text))
        block_text = text + "\n"
        lines.append(block_text)
        offset += len(block_text) + 1
    close_page()
    title = (document.core_properties.title or "").strip() or None
    return title, tuple(pages)


def _heading_level(paragraph: Paragraph) -> int:
    style = paragraph.style.name if paragraph.style is not None else ""
    if style.lower() == "title":
        return 1
    if match := _HEADING_STYLE.match(style):
        return max(1, int(match.group(1)))
    return 0


def _has_page_break(paragraph: Paragraph) -> bool:
    return any(br.get(_BREAK_TYPE) == "page" for br in paragraph._p.iter(_PAGE_BREAK))


def _table_text(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells = [cell.text.strip() for cell in row.cells]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)

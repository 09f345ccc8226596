"""Markdown and plain text: Markdown headings become ``Heading`` entries; form feeds separate pages."""

from __future__ import annotations

import re

from medchat.retrieval.document import Heading, ParsedPage

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TITLE_CHARS = 150


def markdown_pages(text: str) -> tuple[ParsedPage, ...]:
    return tuple(markdown_page(page, number) for number, page in enumerate(_split_pages(text), start=1))


def plain_text_pages(text: str) -> tuple[ParsedPage, ...]:
    return tuple(ParsedPage(number, page.strip("\n")) for number, page in enumerate(_split_pages(text), start=1))


def _split_pages(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\f")


def markdown_page(text: str, number: int) -> ParsedPage:
    """Normalise setext headings to ATX lines and record every heading outside code fences."""
    lines = text.split("\n")
    out: list[str] = []
    headings: list[Heading] = []
    offset = 0
    in_fence = False
    index = 0
    while index < len(lines):
        line = lines[index]
        level, title = 0, ""
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            if match := _ATX.match(line):
                level, title = len(match.group(1)), match.group(2).strip()
            elif line.strip() and index + 1 < len(lines) and _SETEXT_UNDERLINE.match(lines[index + 1]):
                level = 1 if lines[index + 1].strip().startswith("=") else 2
                title = line.strip()
                line = "#" * level + " " + title
                index += 1
        if title:
            headings.append(Heading(offset, level, title))
        out.append(line)
        offset += len(line) + 1
        index += 1
    return ParsedPage(number, "\n".join(out).rstrip(), tuple(headings))


def first_heading_or_line(pages: tuple[ParsedPage, ...]) -> str | None:
    for page in pages:
        if page.headings:
            return page.headings[0].title[:_TITLE_CHARS]
    for page in pages:
        for line in page.text.split("\n"):
            if line.strip():
                return line.strip()[:_TITLE_CHARS]
    return None

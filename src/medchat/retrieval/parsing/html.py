"""HTML: the main content via trafilatura (as Markdown, so headings survive); tag stripping as fallback."""

from __future__ import annotations

import lxml.html
import trafilatura
from lxml.etree import ParserError

from medchat.retrieval.document import ParsedPage
from medchat.retrieval.parsing.markup import markdown_page

_SKIPPED = {"script", "style", "noscript", "template", "head", "nav", "footer", "svg"}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = {"p", "div", "li", "tr", "br", "section", "article", "table", "ul", "ol", "blockquote", "pre", "dd", "dt"}


def parse_html(text: str) -> tuple[str | None, tuple[ParsedPage, ...]]:
    markdown = trafilatura.extract(
        text,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_images=False,
        favor_recall=True,
    )
    root = _parse_tree(text)
    if not markdown or not markdown.strip():
        markdown = _strip_tags(root) if root is not None else ""
    elif root is not None:
        markdown = _restore_headings(markdown, root)
    metadata = trafilatura.extract_metadata(text)
    title = metadata.title.strip() if metadata is not None and metadata.title else None
    return title or None, (markdown_page(markdown, 1),)


def _parse_tree(text: str) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.fromstring(text)
    except (ParserError, ValueError):
        return None


def _restore_headings(markdown: str, root: lxml.html.HtmlElement) -> str:
    """Mark lines that are the source's h1-h6 texts as headings where trafilatura dropped the markup."""
    levels: dict[str, int] = {}
    for element in root.iter(*_HEADINGS):
        levels.setdefault(" ".join(element.text_content().split()), _HEADINGS[element.tag])
    lines = markdown.split("\n")
    for index, line in enumerate(lines):
        level = levels.get(line.strip())
        if level and not line.lstrip().startswith("#"):
            lines[index] = "#" * level + " " + line.strip()
    return "\n".join(lines)


def _strip_tags(root: lxml.html.HtmlElement) -> str:
    parts: list[str] = []

    def walk(element: lxml.html.HtmlElement) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _SKIPPED:
            if element.tail:
                parts.append(element.tail)
            return
        if tag in _HEADINGS:
            parts.append("\n\n" + "#" * _HEADINGS[tag] + " " + " ".join(element.text_content().split()) + "\n\n")
        else:
            if tag in _BLOCKS:
                parts.append("\n\n")
            if element.text:
                parts.append(element.text)
            for child in element:
                walk(child)
        if element.tail:
            parts.append(element.tail)

    walk(root)
    paragraphs = (" ".join(block.split()) for block in "".join(parts).split("\n\n"))
    return "\n\n".join(block for block in paragraphs if block)

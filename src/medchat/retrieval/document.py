"""What a parser makes of a file, and what the chunker reads."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading line in a page's text: it starts at ``offset`` and ends at the next newline."""

    offset: int
    level: int
    title: str


@dataclass(frozen=True, slots=True)
class ParsedPage:
    number: int
    """1-based; the page a citation points to."""
    text: str
    headings: tuple[Heading, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str | None
    pages: tuple[ParsedPage, ...]
    media_type: str

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)

    @property
    def is_empty(self) -> bool:
        return not any(page.text.strip() for page in self.pages)

"""Structure-aware chunking: sections from headings, then sentences packed to a token budget.

A chunk never spans two pages or two sections, so its page and heading path are exact. Chunks
after the first in a section start with up to ``overlap_tokens`` of the previous chunk's tail
(whole sentences when they fit, else its last words). Token counts are the embedding model's,
so a chunk of ``chunk_tokens`` fits the model's 256-token window. Same input, same chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from medchat.retrieval.document import Heading, ParsedPage
from medchat.retrieval.tokenizer import count_tokens

SECTION_SEPARATOR = " > "

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])[ \t]+(?=\S)|[ \t]*\n[ \t]*")
_SPACES = re.compile(r"[ \t\f\v\r]+")


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    page: int
    section: str
    """Heading path, outermost first, joined by " > "; empty before the first heading."""
    text: str
    token_count: int


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    tokens: int
    separator: str
    """Whitespace that joins this unit to the one before it: a paragraph break, a newline or a space."""


def chunk_document(pages: Iterable[ParsedPage], *, chunk_tokens: int, overlap_tokens: int) -> list[Chunk]:
    overlap_tokens = max(0, min(overlap_tokens, chunk_tokens // 2))
    chunks: list[Chunk] = []
    open_headings: list[Heading] = []
    for page in pages:
        for section, body in _sections(page, open_headings):
            for text, tokens in _pack(_units(body, chunk_tokens), chunk_tokens, overlap_tokens):
                chunks.append(Chunk(len(chunks), page.number, section, text, tokens))
    return chunks


def _sections(page: ParsedPage, open_headings: list[Heading]) -> Iterator[tuple[str, str]]:
    """Yield (heading path, body) for each section of the page; ``open_headings`` carries over pages."""
    text = page.text
    position = 0
    for heading in sorted(page.headings, key=lambda h: h.offset):
        if heading.offset < position or heading.offset > len(text):
            continue
        yield _path(open_headings), text[position : heading.offset]
        while open_headings and open_headings[-1].level >= heading.level:
            open_headings.pop()
        open_headings.append(heading)
        line_end = text.find("\n", heading.offset)
        position = len(text) if line_end == -1 else line_end + 1
    yield _path(open_headings), text[position:]


def _path(headings: Sequence[Heading]) -> str:
    return SECTION_SEPARATOR.join(h.title.strip() for h in headings if h.title.strip())


def _units(body: str, chunk_tokens: int) -> list[_Unit]:
    pieces: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPH_BREAK.split(body):
        separator = "\n\n"
        position = 0
        for match in _SENTENCE_BREAK.finditer(paragraph):
            pieces.append((paragraph[position : match.start()], separator))
            separator = "\n" if "\n" in match.group() else " "
            position = match.end()
        pieces.append((paragraph[position:], separator))
    pieces = [(_SPACES.sub(" ", text).strip(), separator) for text, separator in pieces]
    pieces = [(text, separator) for text, separator in pieces if text]
    units: list[_Unit] = []
    for (text, separator), tokens in zip(pieces, count_tokens([text for text, _ in pieces]), strict=True):
        if tokens <= chunk_tokens:
            units.append(_Unit(text, tokens, separator))
        else:
            units.extend(_split_long(text, separator, chunk_tokens))
    return units


def _split_long(text: str, separator: str, chunk_tokens: int) -> list[_Unit]:
    """Cut a sentence longer than a chunk into runs of whole words (a single huge word stands alone)."""
    words = text.split(" ")
    units: list[_Unit] = []
    run: list[str] = []
    run_tokens = 0
    for word, tokens in zip(words, count_tokens(words), strict=True):
        if run and run_tokens + tokens > chunk_tokens:
            units.append(_Unit(" ".join(run), run_tokens, separator if not units else " "))
            run, run_tokens = [], 0
        run.append(word)
        run_tokens += tokens
    if run:
        units.append(_Unit(" ".join(run), run_tokens, separator if not units else " "))
    return units


def _pack(units: list[_Unit], chunk_tokens: int, overlap_tokens: int) -> Iterator[tuple[str, int]]:
    current: list[_Unit] = []
    has_new_text = False
    for unit in units:
        if has_new_text and sum(u.tokens for u in current) + unit.tokens > chunk_tokens:
            yield _join(current)
            current = _tail(current, min(overlap_tokens, chunk_tokens - unit.tokens))
            has_new_text = False
        current.append(unit)
        has_new_text = True
    if has_new_text:
        yield _join(current)


def _tail(units: list[_Unit], budget: int) -> list[_Unit]:
    """The last sentences of ``units`` within ``budget`` tokens, or the last words of the last one."""
    if budget <= 0 or not units:
        return []
    tail: list[_Unit] = []
    used = 0
    for unit in reversed(units):
        if used + unit.tokens > budget:
            break
        tail.insert(0, unit)
        used += unit.tokens
    if tail:
        return tail
    words = units[-1].text.split(" ")
    kept: list[str] = []
    for word, tokens in zip(reversed(words), reversed(count_tokens(words)), strict=True):
        if used + tokens > budget:
            break
        kept.insert(0, word)
        used += tokens
    return [_Unit(" ".join(kept), used, " ")] if kept else []


def _join(units: list[_Unit]) -> tuple[str, int]:
    text = units[0].text + "".join(unit.separator + unit.text for unit in units[1:])
    return text, sum(unit.tokens for unit in units)

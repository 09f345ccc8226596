"""Passages split into the sentences an extractive answer may quote.

Passages are split into whole sentences and list items (a line break is a break; headings and
question lines are never quoted; a passage's first piece that starts mid-sentence — the overlap a
chunk carries from the one before it — is dropped). Each sentence keeps the heading it sits under.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from medchat.llm.extractive.scoring import EMBEDDED_WORDS, MAX_WORDS, WORD, terms

if TYPE_CHECKING:
    from medchat.llm.types import ContextPassage

MIN_WORDS = 3
"""Shorter pieces ("Drink water.", "- Rest") say too little out of context to be an answer."""
HEADING_MAX_WORDS = 12

_BULLET = re.compile(r"^(?:[-–—•*▪◦·‣]|\(?\d{1,2}[.)]|\(?[a-z]\))\s+")
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_LAST_TOKEN = re.compile(r"(\S+)$")
_FIRST_WORD = re.compile(r"[A-Za-z0-9]+")
_INITIALISM = re.compile(r"^(?:[A-Za-z]\.){2,}$|^[A-Z]\.$")
"""e.g., i.e., U.K., and a single initial (J. Smith): not the end of a sentence."""
_ABBREVIATIONS = frozenset("dr mr mrs ms prof st sr jr vs approx no nos fig figs cf al".split())  # noqa: SIM905
_TERMINAL = re.compile(r"[.!?…:;][\"'”’)\]]*$")


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    kind: Literal["sentence", "item", "heading"]
    """``heading``: a whole line that reads as a title or lead-in (short, no full stop, or a question)."""


@dataclass(frozen=True, slots=True)
class Sentence:
    passage_rank: int
    passage_number: int
    position: int
    """Index among the passage's pieces (headings included), so +1 means adjacent in the text."""
    text: str
    terms: frozenset[str]
    words: int
    context: str
    """The heading it sits under (and a list item's lead-in line), if the passage has one."""
    matching_terms: frozenset[str]
    """Its terms and its context's: what the question's terms are matched against."""

    @property
    def in_context(self) -> str:
        """What is embedded: "Treating a flare: Rest the joint." scores as being about treatment. Cut to
        EMBEDDED_WORDS: the model's cost grows with the longest text of a batch, and a sentence's opening
        says what it is about."""
        text = _under(self.context, self.text) if self.context else self.text
        return " ".join(text.split()[:EMBEDDED_WORDS])


def _under(heading: str, text: str) -> str:
    return f"{heading} {text}" if heading[-1] in ".:?!" else f"{heading}: {text}"


def split_sentences(text: str) -> list[str]:
    """Whole sentences, list items (without their marker) and heading lines, in order, each its own piece.

    A line break ends a piece unless the next line carries on a wrapped sentence (it starts lowercase
    or the line ends with a comma); abbreviations and decimals do not end one ("e.g. NSAIDs", "2.5 mg").
    """
    return [piece.text for piece in _pieces(text)]


def _pieces(text: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    for line in _lines(text):
        bullet = _BULLET.match(line)
        if bullet:
            pieces.append(_Piece(line[bullet.end() :], "item"))
            continue
        sentences = _split_line(line)
        if len(sentences) == 1 and _is_heading(sentences[0]):
            pieces.append(_Piece(sentences[0], "heading"))
        else:
            pieces.extend(_Piece(sentence, "sentence") for sentence in sentences)
    return [piece for piece in pieces if piece.text]


def _lines(text: str) -> list[str]:
    """Non-empty lines, whitespace collapsed, hard-wrapped sentences joined back."""
    lines: list[str] = []
    previous_blank = True
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            previous_blank = True
            continue
        wrapped = (
            lines
            and not previous_blank
            and not _BULLET.match(line)
            and not _TERMINAL.search(lines[-1])
            and (line[0].islower() or lines[-1].endswith(","))
        )
        if wrapped:
            lines[-1] += " " + line
        else:
            lines.append(line)
        previous_blank = False
    return lines


def _split_line(line: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for boundary in _BOUNDARY.finditer(line):
        token = _LAST_TOKEN.search(line, start, boundary.start() + 1)
        word = token.group(1).lstrip("(\"'“‘[") if token else ""
        if word.rstrip(".").lower() in _ABBREVIATIONS or _INITIALISM.match(word):
            continue
        sentences.append(line[start : boundary.end()].strip())
        start = boundary.end()
    sentences.append(line[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _is_heading(line: str) -> bool:
    words = len(line.split())
    if line.endswith("?"):
        return words <= HEADING_MAX_WORDS + 4
    return words <= HEADING_MAX_WORDS and (not _TERMINAL.search(line) or line.endswith(":"))


def _starts_mid_sentence(text: str) -> bool:
    """Starts with an all-lowercase word ("other conditions and ..."), not "mRNA" or "2.5 mg"."""
    first = _FIRST_WORD.match(text.lstrip("\"'“‘(["))
    return first is not None and first.group().islower()


def quotable_sentences(passages: Sequence[ContextPassage]) -> list[Sentence]:
    """Sentences and list items worth quoting; a sentence repeated by an overlapping passage only once."""
    sentences: list[Sentence] = []
    seen: set[str] = set()
    for rank, passage in enumerate(passages):
        section = lead = ""
        for position, piece in enumerate(_pieces(passage.text)):
            if position == 0 and piece.kind != "item" and _starts_mid_sentence(piece.text):
                continue  # the tail of the previous chunk's last sentence, carried over as overlap
            if piece.kind == "heading":
                if piece.text.endswith(":"):
                    lead = piece.text
                else:
                    section, lead = piece.text, ""
                continue
            if piece.kind == "sentence":
                lead = ""
            if piece.text.endswith("?"):
                continue
            words = len(piece.text.split())
            key = " ".join(WORD.findall(piece.text.lower()))
            if not MIN_WORDS <= words <= MAX_WORDS or key in seen:
                continue
            seen.add(key)
            text = _capitalised(piece.text)
            context = _under(section, lead) if section and lead else section or lead
            sentences.append(
                Sentence(
                    rank,
                    passage.number,
                    position,
                    text,
                    frozenset(terms(text)),
                    words,
                    context,
                    frozenset(terms(text + " " + context)),
                )
            )
    return sentences


def _capitalised(text: str) -> str:
    """List items may start lowercase ("- a hot, swollen joint"); a quoted bullet never does."""
    first = text.split(" ", 1)[0]
    return text[0].upper() + text[1:] if first.islower() and first[0].isalpha() else text

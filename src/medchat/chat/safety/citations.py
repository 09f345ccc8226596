"""Citation checking: an answer may cite only the passages it was given, as ``[n]``.

A group is ``[n]``, ``[n, m]``, ``[n; m]`` or a range ``[a-b]`` (hyphen or en/em dash), or a mix
(``[1-3, 5]``); adjacent groups (``[1][7]``) are separate groups. A markdown link label (``[1](...)``)
is not a citation. Groups that are entirely valid are left exactly as written. A group with some
invalid numbers is rewritten with the valid ones (a range is clamped: ``[2-7]`` with 3 passages becomes
``[2-3]``); a group with none is removed, with the space before it when that space would be left
dangling (``text [7].`` -> ``text.``). Nothing else in the answer changes.

``parse_citations`` is the one reader of that syntax: the check uses it, and so does ``cites_passages``,
which decides whether a stored answer is ``grounded``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

_NUMBER_ITEM = r"\s*\d{1,9}\s*(?:[-–—]\s*\d{1,9}\s*)?"
_GROUP = re.compile(rf"\[({_NUMBER_ITEM}(?:[,;]{_NUMBER_ITEM})*)\](?!\()")
_ITEM = re.compile(r"(\d+)\s*(?:([-–—])\s*(\d+))?")
_DANGLING_BEFORE = frozenset(".,;:!?)]\n")


class CitationItem(NamedTuple):
    """One number (``low == high``, ``dash`` empty) or range of a group, its ends in order."""

    low: int
    high: int
    dash: str


class CitationGroup(NamedTuple):
    """One bracketed group as found: ``text[start:end]`` is the group as written."""

    start: int
    end: int
    items: list[CitationItem]


def parse_citations(text: str) -> Iterator[CitationGroup]:
    """Every citation group of ``text``, in order: the one reading of ``[n]`` the whole app uses."""
    for match in _GROUP.finditer(text):
        items = []
        for item in _ITEM.finditer(match.group(1)):
            first = int(item.group(1))
            last = int(item.group(3)) if item.group(3) else first
            items.append(CitationItem(min(first, last), max(first, last), item.group(2) or ""))
        yield CitationGroup(match.start(), match.end(), items)


def cites_passages(text: str, passage_count: int) -> bool:
    """Whether ``text`` cites at least one of passages ``1..passage_count`` (what makes an answer grounded)."""
    return any(
        max(item.low, 1) <= min(item.high, passage_count) for group in parse_citations(text) for item in group.items
    )


@dataclass(frozen=True)
class CitationCheck:
    text: str
    """The answer with every citation that points nowhere removed."""
    cited: list[int] = field(default_factory=list)
    """Valid passage numbers, each once, in order of first appearance (ranges expanded)."""
    removed: list[int] = field(default_factory=list)
    """Invalid numbers, each once, in order of first appearance (for a range, its invalid ends)."""


def check_citations(answer: str, passage_count: int) -> CitationCheck:
    """Drop every ``[n]`` with ``n < 1`` or ``n > passage_count`` from ``answer``."""
    count = max(passage_count, 0)
    cited: dict[int, None] = {}
    removed: dict[int, None] = {}
    text = ""
    position = 0
    for group in parse_citations(answer):
        kept_items: list[str] = []
        changed = False
        for low, high, dash in group.items:
            valid = range(max(low, 1), min(high, count) + 1)
            for end in dict.fromkeys((low, high)):
                if not 1 <= end <= count:
                    removed[end] = None
                    changed = True
            cited.update(dict.fromkeys(valid))
            if len(valid) > 1:
                kept_items.append(f"{valid.start}{dash}{valid.stop - 1}")
            elif valid:
                kept_items.append(str(valid.start))
        text += answer[position : group.start]
        position = group.end
        if not changed:
            text += answer[group.start : group.end]
        elif kept_items:
            text += "[" + ", ".join(kept_items) + "]"
        else:
            following = answer[position : position + 1]
            if not following or following in _DANGLING_BEFORE or following in " \t":
                text = text.rstrip(" \t")
            if not text or text.endswith("\n"):
                while position < len(answer) and answer[position] in " \t":
                    position += 1
    text += answer[position:]
    return CitationCheck(text, list(cited), list(removed))

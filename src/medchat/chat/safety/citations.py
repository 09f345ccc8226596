"""Citation checking: an answer may cite only the passages it was given, as ``[n]``.

A group is ``[n]``, ``[n, m]``, ``[n; m]`` or a range ``[a-b]`` (hyphen or en/em dash), or a mix
(``[1-3, 5]``); adjacent groups (``[1][7]``) are separate groups. A markdown link label (``[1](...)``)
is not a citation. Groups that are entirely valid are left exactly as written. A group with some
invalid numbers is rewritten with the valid ones (a range is clamped: ``[2-7]`` with 3 passages becomes
``[2-3]``); a group with none is removed, with the space before it when that space would be left
dangling (``text [7].`` -> ``text.``). Nothing else in the answer changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBER_ITEM = r"\s*\d{1,9}\s*(?:[-–—]\s*\d{1,9}\s*)?"
_GROUP = re.compile(rf"\[({_NUMBER_ITEM}(?:[,;]{_NUMBER_ITEM})*)\](?!\()")
_ITEM = re.compile(r"(\d+)\s*(?:([-–—])\s*(\d+))?")
_DANGLING_BEFORE = frozenset(".,;:!?)]\n")


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
    for match in _GROUP.finditer(answer):
        kept_items: list[str] = []
        changed = False
        for item in _ITEM.finditer(match.group(1)):
            low = int(item.group(1))
            high = int(item.group(3)) if item.group(3) else low
            low, high = min(low, high), max(low, high)
            valid = range(max(low, 1), min(high, count) + 1)
            for end in dict.fromkeys((low, high)):
                if not 1 <= end <= count:
                    removed[end] = None
                    changed = True
            cited.update(dict.fromkeys(valid))
            if len(valid) > 1:
                kept_items.append(f"{valid.start}{item.group(2)}{valid.stop - 1}")
            elif valid:
                kept_items.append(str(valid.start))
        text += answer[position : match.start()]
        position = match.end()
        if not changed:
            text += match.group(0)
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

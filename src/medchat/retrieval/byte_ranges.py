"""The one ``Range: bytes=...`` request header an original file's download honours (RFC 9110 section 14)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(Exception):
    """No byte of the range is in the file: answered 416 with ``Content-Range: bytes */<length>``."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as ``Content-Range`` writes it."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


def requested_range(header: str | None, *, total: int) -> ByteRange | None:
    """The range ``header`` asks of a ``total``-byte file; None for the whole file (no header, several ranges,
    or one the server may ignore as malformed). ``RangeNotSatisfiable`` when it starts past the end."""
    matched = _SINGLE_RANGE.fullmatch((header or "").replace(" ", ""))
    if matched is None:
        return None
    first, last = matched.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last n bytes
        wanted = int(last)
        if wanted == 0 or total == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(total - wanted, 0), total - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= total:
        raise RangeNotSatisfiable
    return ByteRange(start, min(int(last), total - 1) if last else total - 1)

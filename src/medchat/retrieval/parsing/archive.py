"""Bounds for zip-based formats (DOCX), checked on the archive's directory before anything is inflated.

``zipfile`` never inflates a member past the size its directory declares (a lying size ends in a CRC
error), so bounding the declared sizes bounds what a parser can extract.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from medchat.retrieval.errors import UnreadableDocument

MB = 1024 * 1024
RATIO_CHECKED_ABOVE_BYTES = MB
"""Small members may compress extremely well (an empty style sheet); only larger ones have their ratio checked."""


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_extracted_bytes: int = 200 * MB
    max_ratio: int = 100
    max_members: int = 5000


def check_archive(data: bytes, limits: ArchiveLimits) -> None:
    """Raise ``UnreadableDocument`` saying which bound ``data``'s zip directory passes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise UnreadableDocument(f"the archive could not be read: {error}") from error
    if len(members) > limits.max_members:
        raise UnreadableDocument(f"the file holds {len(members)} parts; at most {limits.max_members} are read")
    total = sum(member.file_size for member in members)
    if total > limits.max_extracted_bytes:
        raise UnreadableDocument(
            f"the file would expand to {total / MB:.0f} MB; at most {limits.max_extracted_bytes / MB:.0f} MB "
            "are read (is it a decompression bomb?)"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECKED_ABOVE_BYTES and ratio > limits.max_ratio:
            raise UnreadableDocument(
                f"its part {member.filename} would expand {ratio:.0f} times; at most {limits.max_ratio} times "
                "is read (is it a decompression bomb?)"
            )

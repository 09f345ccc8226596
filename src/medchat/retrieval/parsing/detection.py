"""Media type detection from the bytes themselves (magic numbers), never from a file name."""

from __future__ import annotations

import io
import re
import zipfile
from typing import BinaryIO

from medchat.platform.errors import UnsupportedMediaType

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN_TEXT = "text/plain"
WAV = "audio/wav"
MP3 = "audio/mpeg"
OGG = "audio/ogg"
WEBM = "audio/webm"
M4A = "audio/mp4"

IMAGE_TYPES = frozenset({PNG, JPEG, TIFF})
AUDIO_TYPES = frozenset({WAV, MP3, OGG, WEBM, M4A})
TEXT_TYPES = frozenset({HTML, MARKDOWN, PLAIN_TEXT})

_MP4_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"mp41", b"mp42", b"isom", b"iso2", b"dash", b"3gp4", b"3gp5", b"qt  ")
_HTML_START = re.compile(r"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I | re.S)
_HTML_ANYWHERE = re.compile(r"<html[\s>]|<body[\s>]", re.I)
# Linear in the text's length (an upload's first 64 KiB, on the event loop): no pattern can try each of a line's
# characters as a start and then scan the rest of the line, which took seconds on one long line.
_MARKDOWN_SIGNS = (
    re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M),
    re.compile(r"^(?=[^\n]*\S)[^\n]*\n(=+|-{3,})[ \t]*$", re.M),
    re.compile(r"^ {0,3}```", re.M),
    re.compile(r"\[[^\]\n]{1,300}\]\([^)\s]{1,1000}\)"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SNIFF_BYTES = 64 * 1024


def detect_media_type(data: bytes) -> str:
    """The media type of ``data``, or ``UnsupportedMediaType`` naming what was seen."""
    if not data:
        raise UnsupportedMediaType("the file is empty")
    detected = _binary_type(data) or _text_type(data)
    if detected is None:
        raise UnsupportedMediaType(
            "unsupported file type: expected PDF, DOCX, HTML, Markdown, plain text, PNG, JPEG, TIFF "
            "or audio (WAV, MP3, OGG, WebM, M4A)"
        )
    return detected


def _binary_type(data: bytes) -> str | None:
    head = data[:16]
    if b"%PDF-" in data[:1024]:
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"PK\x03\x04"):
        return DOCX if is_docx(data) else None
    if head.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return MP3
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM
    if data[4:8] == b"ftyp" and data[8:12] in _MP4_AUDIO_BRANDS:
        return M4A
    return None


def is_docx(source: bytes | BinaryIO) -> bool:
    """A zip archive holding a Word document; ``source`` is its bytes or a seekable file, read in place."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2 layer III frame header: 11 sync bits, a valid version, layer III, a valid bitrate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    return version != 0b01 and layer == 0b01 and bitrate not in (0, 0b1111)


def decode_text(data: bytes) -> str | None:
    """The text in ``data`` if it is text (UTF-8, UTF-16 with a BOM, or Windows-1252 with no control bytes)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                return None
    return None if _CONTROL.search(text) else text


def _text_type(data: bytes) -> str | None:
    text = decode_text(data)
    if text is None or not text.strip():
        return None
    sample = text[:_SNIFF_BYTES]
    if _HTML_START.match(sample) or _HTML_ANYWHERE.search(sample[:2048]):
        return HTML
    if any(pattern.search(sample) for pattern in _MARKDOWN_SIGNS):
        return MARKDOWN
    return PLAIN_TEXT

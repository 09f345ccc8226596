"""Optical character recognition with Tesseract (Debian's tesseract-ocr, through pytesseract)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytesseract
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from medchat.retrieval.errors import UnreadableDocument

OCR_LANGUAGE = "eng"
OCR_TIMEOUT_SECONDS = 180
_MIN_WIDTH = 1200
"""Narrower images are upscaled: Tesseract reads best with glyphs ~30 px high."""


def ocr_image(data: bytes) -> str:
    """The text of an image (every frame of a multi-page TIFF, separated by blank lines)."""
    return "\n\n".join(text for text in image_pages_text(data) if text)


def image_pages_text(data: bytes) -> list[str]:
    return [ocr(frame) for frame in _frames(data)]


def _frames(data: bytes) -> Iterator[Image.Image]:
    try:
        image = Image.open(io.BytesIO(data))
        for frame in ImageSequence.Iterator(image):
            yield frame.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise UnreadableDocument(f"the image could not be decoded: {error}") from error


def ocr(image: Image.Image) -> str:
    prepared = ImageOps.exif_transpose(image).convert("L")
    if prepared.width < _MIN_WIDTH:
        factor = _MIN_WIDTH / prepared.width
        prepared = prepared.resize((_MIN_WIDTH, round(prepared.height * factor)), Image.Resampling.LANCZOS)
    try:
        text = pytesseract.image_to_string(prepared, lang=OCR_LANGUAGE, timeout=OCR_TIMEOUT_SECONDS)
    except pytesseract.TesseractNotFoundError as error:
        raise RuntimeError("tesseract is not installed (Debian: apt-get install tesseract-ocr)") from error
    return _tidy(text)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\f", "").split("\n")]
    return "\n".join(lines).strip()

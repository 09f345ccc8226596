from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest

from medchat.platform.errors import UnsupportedMediaType
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.parsing import detect_media_type, ocr_image, parse_document, transcribe
from tests.support import files

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def wav() -> bytes:
    return files.spoken_wav()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (files.text_pdf, "application/pdf"),
        (files.word_document, DOCX_TYPE),
        (lambda: files.image_bytes(files.text_image(["x"]), "PNG"), "image/png"),
        (lambda: files.image_bytes(files.text_image(["x"]), "JPEG"), "image/jpeg"),
        (lambda: files.image_bytes(files.text_image(["x"]), "TIFF"), "image/tiff"),
        (lambda: b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "text/html"),
        (lambda: b"  <!-- c --><HTML lang=en><p>Hi</p></HTML>", "text/html"),
        (lambda: b"# Title\n\nSome *text*.", "text/markdown"),
        (lambda: b"Setext title\n============\n\nBody.", "text/markdown"),
        (lambda: b"Plain words on a line.\nAnother line.", "text/plain"),
        ("Fièvre et toux — notes".encode, "text/plain"),
        (lambda: "Fièvre et toux".encode("cp1252"), "text/plain"),
        (lambda: "\ufeffBOM text".encode("utf-16"), "text/plain"),
    ],
)
def test_documents_are_recognised_by_their_bytes(make, expected: str) -> None:
    assert detect_media_type(make()) == expected


@pytest.mark.parametrize(
    ("container", "codec", "expected"),
    [
        ("mp3", "libmp3lame", "audio/mpeg"),
        ("ogg", "libopus", "audio/ogg"),
        ("webm", "libopus", "audio/webm"),
        ("ipod", "aac", "audio/mp4"),
    ],
)
def test_audio_is_recognised_by_its_bytes(wav: bytes, container: str, codec: str, expected: str) -> None:
    assert detect_media_type(wav) == "audio/wav"
    assert detect_media_type(files.transcode(wav, container, codec)) == expected


def _zip_without_word_document() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)),
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        _zip_without_word_document(),
        bytes(range(256)) * 4,
        b"   \n\t  ",
    ],
)
def test_anything_else_is_an_unsupported_media_type(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        detect_media_type(data)
    assert raised.value.status == 415
    assert raised.value.code == "unsupported_media_type"


def test_pdf_text_layer_pages_and_outline_headings() -> None:
    document = parse_document(files.text_pdf())
    assert document.title == "Asthma leaflet"
    assert [page.number for page in document.pages] == [1, 2]
    assert "breathing difficulties" in document.pages[0].text
    assert "Reliever inhalers" in document.pages[1].text
    assert [(h.level, h.title) for h in document.pages[1].headings] == [(2, "Treatment")]


def test_scanned_pdf_pages_are_rendered_and_read_by_ocr() -> None:
    document = parse_document(files.scanned_pdf())
    assert document.media_type == "application/pdf"
    text = document.pages[0].text.lower()
    assert "metformin" in text and "diabetes" in text


def test_broken_pdf_is_unreadable_not_a_crash() -> None:
    with pytest.raises(UnreadableDocument):
        parse_document(b"%PDF-1.7\n" + b"garbage" * 50)


def test_docx_keeps_headings_tables_and_page_breaks() -> None:
    document = parse_document(files.word_document())
    assert document.title == "Hypertension guide"
    first, second = document.pages
    assert [(h.level, h.title) for h in first.headings] == [(1, "Hypertension"), (2, "Treatment")]
    assert "rarely causes symptoms" in first.text
    assert "Amlodipine | 5 mg" in second.text


def test_html_main_content_keeps_headings_and_drops_scripts() -> None:
    html = b"""<!doctype html><html><head><title>Asthma | Health site</title><script>var x = 1;</script></head>
    <body><nav>Home | About | Contact</nav><article><h1>Asthma</h1>
    <p>Asthma is a common lung condition that causes occasional breathing difficulties in people of all ages.</p>
    <h2>Symptoms</h2><p>The main symptoms are wheezing, breathlessness, a tight chest and coughing at night.</p>
    </article></body></html>"""
    document = parse_document(html)
    page = document.pages[0]
    assert document.media_type == "text/html"
    assert "wheezing" in page.text and "var x" not in page.text
    assert [(h.level, h.title) for h in page.headings] == [(1, "Asthma"), (2, "Symptoms")]


def test_markdown_and_text_pages() -> None:
    markdown = parse_document(b"# Gout\n\nUric acid crystals.\n\n## Diet\n\nLess red meat.")
    assert markdown.title == "Gout"
    assert [h.title for h in markdown.pages[0].headings] == ["Gout", "Diet"]
    text = parse_document(b"Discharge notes\n\nRest for a week.\fPage two notes.")
    assert text.media_type == "text/plain"
    assert [page.text for page in text.pages] == ["Discharge notes\n\nRest for a week.", "Page two notes."]


def test_images_are_read_by_ocr() -> None:
    png = files.image_bytes(files.text_image(["Ibuprofen 400 mg", "three times a day"]), "PNG")
    assert "ibuprofen" in ocr_image(png).lower()
    document = parse_document(files.image_bytes(files.text_image(["Warfarin needs INR checks"]), "JPEG", quality=95))
    assert document.media_type == "image/jpeg"
    assert "warfarin" in document.pages[0].text.lower()


def test_a_corrupt_image_is_unreadable() -> None:
    with pytest.raises(UnreadableDocument):
        ocr_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)


def test_speech_is_transcribed(wav: bytes) -> None:
    text = transcribe(wav).lower()
    assert "tablets" in text and "hours" in text and "fever" in text
    assert "tablets" in transcribe(files.transcode(wav, "ogg", "libopus")).lower()


def test_undecodable_audio_is_unreadable() -> None:
    with pytest.raises(UnreadableDocument):
        transcribe(b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 20)


TYPE_SNIFFING_SECONDS = 15
"""Far above the linear sniffing's time for these inputs (well under a second on a busy machine); the
backtracking patterns they replaced spent 40 s of CPU on them."""


def test_type_sniffing_of_one_long_line_is_linear() -> None:
    """Uploads of one long line ("a a a …", "[[[…", "[a](" repeated) are sniffed on the event loop: a
    pattern that backtracks across the line would stall every request for seconds."""
    script = """
import sys
from medchat.retrieval.parsing.detection import detect_media_type
for text in ("a " * 32768, "[" * 65536, "x" * 65535 + "\\n", "[a](" * 16384):
    assert detect_media_type(text.encode()) == "text/plain"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TYPE_SNIFFING_SECONDS, check=True
    )
    assert done.stdout.strip() == "ok"

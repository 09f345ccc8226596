"""Small real files of every supported type, made in the tests (nothing checked in)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import docx
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

SPOKEN = "Take two tablets of paracetamol every six hours for the fever."
PAGE_TEXTS = [
    "Hand hygiene. Clean hands with alcohol rub before and after every patient contact.",
    "Sharps disposal. Place used needles in the yellow sharps bin immediately after use.",
    "Warfarin and cranberry juice. Patients taking warfarin should avoid large amounts of cranberry juice "
    "because it can raise the INR and increase the risk of bleeding.",
]
"""The text of each page of ``three_page_pdf``, in order."""


def text_image(lines: list[str], *, size: tuple[int, int] = (1400, 360)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for number, line in enumerate(lines):
        draw.text((40, 40 + number * 70), line, fill="black", font=font)
    return image


def image_bytes(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def text_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.set_title("Asthma leaflet")
    pdf.add_page()
    pdf.start_section("Asthma")
    pdf.multi_cell(0, 8, "Asthma\nAsthma is a common lung condition that causes occasional breathing difficulties.")
    pdf.add_page()
    pdf.start_section("Treatment", level=1)
    pdf.multi_cell(0, 8, "Treatment\nReliever inhalers treat the symptoms of asthma when they occur.")
    return bytes(pdf.output())


def three_page_pdf() -> bytes:
    """One short protocol per page (``PAGE_TEXTS``), so a citation's page number can be checked."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in PAGE_TEXTS:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    png = image_bytes(text_image(["Metformin is the first medicine", "for type 2 diabetes."]), "PNG")
    pdf.image(io.BytesIO(png), x=10, y=10, w=190)
    return bytes(pdf.output())


def word_document() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Hypertension guide"
    document.add_heading("Hypertension", 1)
    document.add_paragraph("High blood pressure rarely causes symptoms.")
    document.add_heading("Treatment", 2)
    document.add_paragraph("Lifestyle changes come first, then medicines.")
    document.add_page_break()
    table = document.add_table(rows=2, cols=2)
    for (row, column), text in {(0, 0): "Drug", (0, 1): "Dose", (1, 0): "Amlodipine", (1, 1): "5 mg"}.items():
        table.cell(row, column).text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def spoken_wav() -> bytes:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), SPOKEN], check=True)
        return path.read_bytes()


def transcode(wav: bytes, container: str, codec: str) -> bytes:
    """The same sound in another container and codec, encoded with PyAV (ffmpeg's libraries)."""
    output = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source, av.open(output, "w", format=container) as target:
        rate = 48000 if codec == "libopus" else 16000
        stream = target.add_stream(codec, rate=rate)
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    target.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return output.getvalue()

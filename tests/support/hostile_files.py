"""Hostile uploads, built in the tests: a zip bomb DOCX, a billion-laughs DOCX, a huge multipart body.

The bomb is written member by member, so the test never holds its inflated size in memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from tests.support.files import word_document

MB = 1024 * 1024
_DOCUMENT = "word/document.xml"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _with_document_xml(write_document: object) -> bytes:
    """``word_document()`` with its ``word/document.xml`` replaced by what ``write_document(stream)`` writes."""
    source = zipfile.ZipFile(io.BytesIO(word_document()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for member in source.infolist():
            if member.filename == _DOCUMENT:
                with target.open(_DOCUMENT, "w", force_zip64=True) as stream:
                    write_document(stream)  # type: ignore[operator]
            else:
                target.writestr(member, source.read(member.filename))
    return buffer.getvalue()


def zip_bomb_docx(inflated_mb: int = 320) -> bytes:
    """A DOCX of a few hundred KB whose ``word/document.xml`` inflates to ``inflated_mb`` MB of valid XML."""

    def write(stream: io.BufferedIOBase) -> None:
        stream.write(f'<?xml version="1.0"?><w:document xmlns:w="{_W}"><w:body>'.encode())
        paragraph = b"<w:p><w:r><w:t>" + b"A" * 1000 + b"</w:t></w:r></w:p>"
        block = paragraph * (MB // len(paragraph))
        for _ in range(inflated_mb):
            stream.write(block)
        stream.write(b"</w:body></w:document>")

    return _with_document_xml(write)


def billion_laughs_docx() -> bytes:
    """A DOCX whose ``word/document.xml`` nests entities to expand to gigabytes."""
    entities = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    entities += [f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10)]
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{"".join(entities)}]>'
        f'<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>'
    ).encode()
    return _with_document_xml(lambda stream: stream.write(xml))


def many_members_docx(members: int) -> bytes:
    """A valid DOCX with ``members`` extra empty parts."""
    buffer = io.BytesIO(word_document())
    with zipfile.ZipFile(buffer, "a") as archive:
        for number in range(members):
            archive.writestr(f"word/extra/part{number}.xml", b"")
    return buffer.getvalue()


def multipart_body(boundary: str, *, filename: str, size: int, chunk: int = MB) -> Iterator[bytes]:
    """A multipart/form-data body with one file of ``size`` bytes, produced a chunk at a time."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="scope"\r\n\r\nprivate\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    line = b"Paracetamol relieves pain and fever in adults and children.\n"
    block = (line * (chunk // len(line) + 1))[:chunk]
    sent = 0
    while sent < size:
        part = block[: min(chunk, size - sent)]
        sent += len(part)
        yield part
    yield f"\r\n--{boundary}--\r\n".encode()

"""Bytes -> Document: the one place a page is decoded and read. transform makes rows of the result."""

from __future__ import annotations

import hashlib

from govreports.extract.cells import ParseFailure
from govreports.extract.convert import KINDS, read_converted
from govreports.extract.decode import DecodeError, decode
from govreports.extract.page import Document, read_page

__all__ = ["Document", "ParseFailure", "read_document"]


# A file is known by its first bytes, not by its name or Content-Type (servers label .doc as text/html).
_PDF, _ZIP = b"%PDF-", b"PK\x03\x04"


def read_document(data: bytes, source: str = "<bytes>", http_charset: str | None = None) -> Document:
    """Decode and read one page, or read a PDF, DOCX, DOC, WPS or RTF file. Raises ParseFailure (its REASONS)."""
    if not data or not data.strip():
        raise ParseFailure("empty input")
    head = data[:1024].lstrip()
    if head.startswith(_PDF):
        from govreports.extract.pdf import read_pdf  # pdfplumber only when a PDF comes

        return read_pdf(data, source)
    if head.startswith(_ZIP):
        from govreports.extract.docx import read_docx

        return read_docx(data, source)
    if head.startswith(tuple(KINDS)):  # .doc, .wps, .rtf: through LibreOffice to DOCX
        return read_converted(data, source)
    try:
        decoded = decode(data, http_charset)
    except DecodeError as exc:
        raise ParseFailure("cannot decode", str(exc)) from exc
    doc = read_page(decoded.text)
    doc.source, doc.content_sha256, doc.encoding = source, hashlib.sha256(data).hexdigest(), decoded.encoding
    return doc

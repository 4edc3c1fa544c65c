"""Bytes -> Document: the one place a page is decoded and read. transform makes rows of the result."""

from __future__ import annotations

import hashlib

from govreports.extract.cells import ParseFailure
from govreports.extract.decode import DecodeError, decode
from govreports.extract.page import Document, read_page

__all__ = ["Document", "ParseFailure", "read_document"]


def read_document(data: bytes, source: str = "<bytes>", http_charset: str | None = None) -> Document:
    """Decode and read one page. Raises ParseFailure ("empty input", "cannot decode", "page too large")."""
    if not data or not data.strip():
        raise ParseFailure("empty input")
    try:
        decoded = decode(data, http_charset)
    except DecodeError as exc:
        raise ParseFailure("cannot decode", str(exc)) from exc
    doc = read_page(decoded.text)
    doc.source, doc.content_sha256, doc.encoding = source, hashlib.sha256(data).hexdigest(), decoded.encoding
    return doc

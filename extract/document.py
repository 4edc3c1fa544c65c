"""Bytes -> Document: the one place a page is decoded and read. transform makes rows of the result."""

from __future__ import annotations

import hashlib

from govreports.extract.decode import DecodeError, decode
from govreports.extract.page import Document, read_page

__all__ = ["Document", "ParseFailure", "read_document"]


class ParseFailure(Exception):
    """The input yielded no report tables. `reason` is one of REASONS: the first two are raised while
    reading (here), the others by transform when the document holds no report."""

    REASONS = ("empty input", "cannot decode", "not a report", "no report tables found")

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def read_document(data: bytes, source: str = "<bytes>", http_charset: str | None = None) -> Document:
    """Decode and read one page. Raises ParseFailure ("empty input", "cannot decode")."""
    if not data or not data.strip():
        raise ParseFailure("empty input")
    try:
        decoded = decode(data, http_charset)
    except DecodeError as exc:
        raise ParseFailure("cannot decode", str(exc)) from exc
    doc = read_page(decoded.text)
    doc.source, doc.content_sha256, doc.encoding = source, hashlib.sha256(data).hexdigest(), decoded.encoding
    return doc

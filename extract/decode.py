"""Bytes -> text for fetched report pages, with the charset decided here rather than by bs4/lxml.

Given GBK bytes, bs4 and lxml can silently drop text, so the pipeline decodes first and parses str.
Order: BOM -> HTTP header charset -> <meta> charset in the first 64 KiB -> detection. A declared
charset is used only if the bytes decode strictly with it; a mislabeled page falls through to
detection, and `declared` still records what it claimed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

__all__ = ["DecodeError", "Decoded", "decode", "http_charset_from_content_type"]

_HEAD = 64 * 1024  # how far to look for <meta> and NUL bytes (browsers prescan 1 KiB; pages vary)


class DecodeError(ValueError):
    """The bytes are not text we can decode; the message starts with "cannot decode"."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded page text and how the charset was chosen."""

    text: str
    encoding: str  # codec actually used, Python's lower-case name: "utf-8", "gb18030", "utf-16-le", ...
    declared: str | None  # what the header or page claimed, lower-case, or None
    how: str  # "bom" | "http" | "meta" | "detected"


# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# All the GB family labels mean gb18030 in practice: it is a superset, and pages labeled gb2312
# routinely contain GBK-only characters (镕, 堃) that a strict gb2312 decode would reject.
_GB_LABELS = frozenset({"gb2312", "gbk", "x-gbk", "gb_2312-80", "cp936", "euc-cn", "gb18030"})
_GB_CODECS = frozenset({"gb2312", "gbk", "gb18030"})
# Single-byte Western codecs decode (almost) any bytes, so "decodes strictly" proves nothing: servers
# that default to ISO-8859-1 would turn every GBK page into mojibake. Trusted only for ASCII-only bytes.
_ANY_BYTES = frozenset({"iso8859-1", "cp1252", "iso8859-15", "latin-1"})
# Never honoured from a declaration: UTF-16/32 without a BOM (an ASCII-readable declaration cannot be
# right, as HTML says), UTF-7 (a known XSS vector), and codecs that are not charsets.
_REFUSED = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7", "idna",
                      "punycode", "raw-unicode-escape", "unicode-escape", "undefined"})

# Both forms: <meta charset="gbk"> and <meta http-equiv=... content="text/html; charset=gbk">,
# attributes in any order, quoted or not.
_META_RE = re.compile(rb"""<meta\b[^<>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.IGNORECASE)
_CT_RE = re.compile(r"""\bcharset\s*=\s*["']?\s*([^"';,\s]+)""", re.IGNORECASE)

# C0 control characters other than \t \n \r \f, and C1 controls: their share tells binary from text.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x80-\x9f]")
_MAX_CONTROL_SHARE = 0.01


def http_charset_from_content_type(value: str | None) -> str | None:
    """The charset= parameter of a Content-Type header value, lower-case, or None."""
    m = _CT_RE.search(value or "")
    return m.group(1).lower() if m else None


def _label(raw: str | None) -> str | None:
    """Normalise a declared label: lower-case, no quotes or spaces; None if empty."""
    return (raw or "").strip().strip("\"'").strip().lower() or None


def _codec_for(label: str) -> str | None:
    """Python codec name for a declared label, or None if unknown or not to be honoured."""
    if label in _GB_LABELS:
        return "gb18030"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: NUL; UnicodeEncodeError: lone surrogates
        return None  # unknown names fall through to the next source, never crash
    # Transform codecs (rot13, base64, hex) are not text encodings.
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    return "gb18030" if info.name in _GB_CODECS else info.name


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _try_declared(data: bytes, codec: str, utf8_text: str | None) -> str | None:
    """Decode with a declared codec, or None when the declaration cannot be trusted for these bytes."""
    if not data.isascii():
        if codec in _ANY_BYTES:
            return None
        # Valid non-ASCII UTF-8 is almost never anything else, while UTF-8 Chinese often decodes
        # "strictly" as gb18030 into mojibake; so a UTF-8 page mislabeled gbk goes to detection.
        if codec != "utf-8" and utf8_text is not None:
            return None
    if codec == "utf-8":
        return utf8_text
    return _strict(data, codec)


def _detect(data: bytes, utf8_text: str | None) -> tuple[str, str]:
    if utf8_text is not None:
        return utf8_text, "utf-8"
    text = _strict(data, "gb18030")
    if text is not None:
        return text, "gb18030"
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        codec = codecs.lookup(best.encoding).name
        text = _strict(data, codec)
        if text is not None:
            return text, codec
    raise DecodeError("cannot decode: no charset fits the bytes")


_C0_BYTES = bytes(i for i in range(32) if i not in (9, 10, 12, 13))
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_C1_GB18030_LEAD = b"\x81\x30"  # U+0080..U+009F are 4-byte sequences starting so in gb18030


def _controls(text: str, data: bytes, codec: str) -> int:
    """How many control characters `text` (decoded from `data` with `codec`) holds, counted on the
    bytes where the codec allows it: that is cheaper than a regex over the decoded text."""
    if codec in ("utf-8", "gb18030"):
        c0 = len(data) - len(data.translate(None, _C0_BYTES))  # both are ASCII-compatible
        if codec == "utf-8":
            return c0 + len(_C1_UTF8.findall(data))
        if _C1_GB18030_LEAD not in data:
            return c0
    return len(_CONTROL_RE.findall(text)) if _CONTROL_RE.search(text) else 0


def _check_text(text: str, data: bytes, codec: str) -> None:
    """Refuse decoded text that is mostly control characters (binary that happened to decode)."""
    controls = _controls(text, data, codec)
    if controls > _MAX_CONTROL_SHARE * len(text):
        raise DecodeError(f"cannot decode: binary data ({controls} control characters in {len(text)})")


def decode(data: bytes, http_charset: str | None = None) -> Decoded:
    """Decode a fetched page; `http_charset` is the charset from the Content-Type header, if any."""
    if not data:
        return Decoded("", "utf-8", None, "detected")

    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _strict(data[len(bom) :], codec)
            if text is not None:
                _check_text(text, data[len(bom) :], codec)
                return Decoded(text, codec, None, "bom")
            break  # a BOM followed by invalid bytes: treat like any other page

    head = data[:_HEAD]
    if b"\x00" in head:
        raise DecodeError("cannot decode: binary data (NUL bytes)")

    # Strict UTF-8 is computed once: it serves the utf-8 declaration, the mislabel guard and detection.
    utf8_text = _strict(data, "utf-8")

    http_label = _label(http_charset)
    meta_match = _META_RE.search(head)
    meta_label = _label(meta_match.group(1).decode("ascii")) if meta_match else None

    for label, how in ((http_label, "http"), (meta_label, "meta")):
        codec = _codec_for(label) if label else None
        text = _try_declared(data, codec, utf8_text) if codec else None
        if codec and text is not None:
            _check_text(text, data, codec)
            return Decoded(text, codec, label, how)

    # Nothing declared, or every declaration failed: keep the highest-priority claim for diagnostics.
    text, codec = _detect(data, utf8_text)
    _check_text(text, data, codec)
    return Decoded(text, codec, http_label or meta_label, "detected")

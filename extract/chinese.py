"""Character-level normalisation shared by every reader: full-width forms and traditional characters."""

from __future__ import annotations

import unicodedata

import opencc

from extract.textcache import text_cache

_T2S = opencc.OpenCC("t2s")


@text_cache(maxsize=131072)
def simplify(text: str) -> str:
    """NFKC (full-width digits, letters and brackets to ASCII; U+3000 and nbsp to spaces), then
    traditional characters to simplified."""
    s = unicodedata.normalize("NFKC", text)
    return s if s.isascii() else _T2S.convert(s)

"""Character-level normalisation shared by every reader: full-width forms and traditional characters."""

from __future__ import annotations

import unicodedata

import opencc

from govreports.extract.textcache import text_cache

_T2S = opencc.OpenCC("t2s")
# A year written in Chinese numerals (二〇二一年): four digits, 〇 with its look-alikes 零, ○ and O.
_CN_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0", "○": "0", "O": "0"}
CN_YEAR_DIGITS = "[" + "".join(_CN_DIGITS) + "]{4}"  # a regex fragment


def cn_digits(text: str) -> str:
    """二〇二一 -> 2021 (text made of the digits CN_YEAR_DIGITS matches)."""
    return "".join(_CN_DIGITS[c] for c in text)


@text_cache(maxsize=131072)
def simplify(text: str) -> str:
    """NFKC (full-width digits, letters and brackets to ASCII; U+3000 and nbsp to spaces), then
    traditional characters to simplified."""
    s = unicodedata.normalize("NFKC", text)
    return s if s.isascii() else _T2S.convert(s)

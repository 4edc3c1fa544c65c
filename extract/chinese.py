"""Character-level normalisation shared by every reader: full-width forms and traditional characters."""

from __future__ import annotations

import csv
import unicodedata
from importlib import resources

import opencc

from govreports.extract.textcache import PAGE_TEXTS, text_cache

_T2S = opencc.OpenCC("t2s")
# A year written in Chinese numerals (二〇二一年): four digits, 〇 with its look-alikes 零, ○ and O.
_CN_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")} | {"零": "0", "○": "0", "O": "0"}
CN_YEAR_DIGITS = "[" + "".join(_CN_DIGITS) + "]{4}"  # a regex fragment


# A PDF's text layer may name a character by its radical's code point (⾏ U+2F8F for 行, ⻔ U+2ED4 for 门):
# a font that draws both with one glyph maps the glyph back to the lower code point. data/radicals.csv
# maps each radical to the ideograph it is drawn as (made from the bundled Noto Sans CJK's own cmap).
with resources.files("govreports.data").joinpath("radicals.csv").open(encoding="utf-8", newline="") as _f:
    _RADICALS = str.maketrans({r["radical"]: r["ideograph"] for r in csv.DictReader(_f)})
# Control characters and zero-width marks: what a PDF's text layer gives for glyphs of no character.
_INVISIBLE = str.maketrans(dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F,
                                          0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0xAD]))


def unify_radicals(text: str) -> str:
    """Radicals to the ideographs they stand for, and invisible characters removed (a PDF's text layer)."""
    return text.translate(_RADICALS).translate(_INVISIBLE)


def cn_digits(text: str) -> str:
    """二〇二一 -> 2021 (text made of the digits CN_YEAR_DIGITS matches)."""
    return "".join(_CN_DIGITS[c] for c in text)


@text_cache(maxsize=PAGE_TEXTS)
def simplify(text: str) -> str:
    """NFKC (full-width digits, letters and brackets to ASCII; U+3000 and nbsp to spaces), then
    traditional characters to simplified."""
    s = unicodedata.normalize("NFKC", text)
    return s if s.isascii() else _T2S.convert(s.translate(_RADICALS))

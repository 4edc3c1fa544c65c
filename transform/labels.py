"""Normalise a printed label so that the variants real pages print compare equal.

Two levels: `clean` keeps numbering and notes (block captions such as 第二十条第（五）项 need the
number in brackets); `label_key` strips numbering, parenthetical notes and punctuation and is what
labels are matched on. Both are cached: the same few hundred labels recur on every page.
"""

from __future__ import annotations

import re

from govreports.extract.chinese import simplify
from govreports.extract.textcache import PAGE_TEXTS, text_cache
from govreports.transform.dictionary import read_csv

_WHITESPACE = re.compile(r"\s+")
# Leading enumerations: 一、 （一） (1) 1. 1、 ① 第一, possibly repeated ("（三）1.").
_NUMBERING = re.compile(
    r"^(?:[一二三四五六七八九十]+[、.．]|[(][一二三四五六七八九十\d]+[)]|\d+[、.．)]|[①-⑳]|第[一二三四五六七八九十]+[、.．])+"
)
_PARENS = re.compile(r"[(\[【][^()\[\]【】]*[)\]】]")
_PUNCT = re.compile(r"[、，,。.:;；“”\"'‘’/\\《》<>·!！?？\-—_|*#]")
_UNCLOSED_PAREN = re.compile(r"[(（][^)）]*$")

_REPLACEMENTS = tuple((r["printed"], r["official"]) for r in read_csv("aliases.csv") if r["kind"] == "replace")


@text_cache(maxsize=PAGE_TEXTS)
def clean(text: str) -> str:
    """NFKC (full-width digits and brackets to ASCII), simplified characters, no whitespace,
    known misprints and word swaps replaced (data/aliases.csv, kind=replace)."""
    s = _WHITESPACE.sub("", simplify(text))
    for printed, official in _REPLACEMENTS:
        if printed in s:
            s = s.replace(printed, official)
    return s


@text_cache(maxsize=PAGE_TEXTS)
def label_key(text: str) -> str:
    """The key labels are matched on: `clean`, then without leading numbering, parenthetical
    notes (处理决定数量（指2020年办件量）) and punctuation (本年增/减 = 本年增减)."""
    s = clean(text)
    s = _NUMBERING.sub("", s)
    for _ in range(8):  # nested notes: strip innermost first (real labels nest 2 deep at most)
        s, stripped = _PARENS.subn("", s)
        if not stripped:
            break
    s = _UNCLOSED_PAREN.sub("", s)  # a note cut off by a truncated page
    s = _PUNCT.sub("", s)
    return s


_CAPTION = re.compile(r"第二十条第\(?([一二三四五六七八九十]+)\)?项")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


@text_cache(maxsize=16384)
def caption_block(text: str) -> str | None:
    """The block number of a 二 caption ("第二十条第（五）项" -> "5"), else None."""
    m = _CAPTION.search(clean(text))
    if not m or len(clean(text)) > 24:
        return None
    digits = m.group(1)  # 一 … 十, 十一 …
    return str(10 + _CN_DIGITS.get(digits[1:], 0) if digits.startswith("十") else _CN_DIGITS[digits[0]])


"""Cell text -> value: one table cell of an annual report as a number, a blank, a "not given" marker,
or something we refuse to interpret.

The parser never guesses: anything outside the rules below is "unparsed" so that a human (or a later
rule) decides, instead of a wrong number silently entering the dataset.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import partial

from govreports.extract.textcache import text_cache

__all__ = [
    "BLANK",
    "NA",
    "NA_MARKERS",
    "NUMBER",
    "UNITS",
    "UNPARSED",
    "CellValue",
    "normalise",
    "parse_value",
]

NUMBER = "number"
BLANK = "blank"
NA = "na"
UNPARSED = "unparsed"

# Column units, as spelled in data/dictionary.csv.
UNITS = frozenset({"count", "wan_yuan"})

# Markers agencies put in a cell to say "not given / not applicable". They are kept distinct from 0
# (a blank or "/" must never satisfy or fail an identity by itself). The traditional-character forms
# cover the traditional mirrors of the same reports.
NA_MARKERS: tuple[str, ...] = (
    "/",
    "-",
    "--",
    "—",
    "——",
    "–",
    "－",
    "无",
    "暂无",
    "空",
    "不适用",
    "N/A",
    "n/a",
    "\\",
    "、",
    "無",
    "暫無",
)


@dataclass(frozen=True, slots=True)
class CellValue:
    """A parsed cell: `value` is set only when `status == "number"`; `raw` is the text as given."""

    value: float | None
    status: str  # "number" | "blank" | "na" | "unparsed"
    raw: str


# Characters NFKC leaves alone but that must not count: zero-width space/joiners and a stray BOM
# (they come with Word-pasted HTML and are invisible in the report).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
# U+2212 MINUS SIGN is a minus; NFKC does not fold it to "-".
_INVISIBLE[0x2212] = ord("-")


def normalise(raw: str) -> str:
    """NFKC (full-width digits/punctuation, U+3000, nbsp -> ASCII), then drop all whitespace."""
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE)
    # str.split() with no argument splits on every Unicode whitespace character.
    return "".join(text.split())


# Compared after normalise(), so full-width variants ("－") match their ASCII form too.
_NA_SET = frozenset(normalise(m) for m in NA_MARKERS)

# Count words allowed after a number in a count column ("5个", "16件").
_COUNT_WORDS = "个件项条次人宗家起份個項條"
# Sign words: "--253" is a doubled minus (Word/Excel artefact) and means -253.
_NEGATIVE = frozenset({"-", "--", "减", "减少", "減", "減少"})

_UNIT = rf"万元|萬元|亿元|億元|万|萬|亿|億|元|[{_COUNT_WORDS}]"
_NUMBER_RE = re.compile(
    r"(?P<sign>--|[+-]|增加|减少|減少|增|减|減)?"
    # Thousands groups must be exactly 3 digits, else "1,07" would be read as 107.
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    rf"(?:(?P<unit>{_UNIT})|\((?P<punit>{_UNIT})\))?",
    re.ASCII,  # \d must not match other scripts' digits (NFKC already mapped full-width ones)
)

# Multiplier per (suffix, column unit); a missing pair means the suffix contradicts the column -> unparsed.
# Traditional forms (萬, 億) are folded to simplified ones before lookup.
_ONE = Decimal(1)
_SCALE: dict[tuple[str, str], Decimal] = {
    ("", "count"): _ONE,
    ("", "wan_yuan"): _ONE,
    ("count_word", "count"): _ONE,
    ("万", "count"): Decimal(10_000),
    ("万", "wan_yuan"): _ONE,
    ("万元", "wan_yuan"): _ONE,
    ("元", "wan_yuan"): Decimal("0.0001"),
    ("亿", "count"): Decimal(100_000_000),
    ("亿", "wan_yuan"): Decimal(10_000),
    ("亿元", "wan_yuan"): Decimal(10_000),
}
_SUFFIX_FOLD = {"萬": "万", "萬元": "万元", "億": "亿", "億元": "亿元"}
# No traps: a product past Decimal's exponent limit (a million digits times 万) is Infinity, then
# unparsed below, instead of raising decimal.Overflow.
_ARITHMETIC = Context(traps=[])


# Superscripts, subscripts and circled or parenthesised numbers: NFKC would make them digits.
_MARKS = re.compile("[\u00b2\u00b3\u00b9\u2070-\u209f\u2460-\u24ff\u2776-\u2793\u3251-\u325f\u32b1-\u32bf]")


def _parse(raw: str, unit: str) -> CellValue:
    if _MARKS.search(raw):
        return CellValue(None, UNPARSED, raw)  # 5¹, 5①: a footnote mark, not a digit
    text = normalise(raw)
    if not text:
        return CellValue(None, BLANK, raw)
    if text in _NA_SET:
        return CellValue(None, NA, raw)
    m = _NUMBER_RE.fullmatch(text)
    if m is None:
        return CellValue(None, UNPARSED, raw)
    suffix = m["unit"] or m["punit"] or ""
    if suffix and suffix in _COUNT_WORDS:
        suffix = "count_word"
    else:
        suffix = _SUFFIX_FOLD.get(suffix, suffix)
    scale = _SCALE.get((suffix, unit))
    if scale is None:
        return CellValue(None, UNPARSED, raw)
    # Decimal keeps money conversions exact: 251000元 -> 25.1, not 25.099999999999998.
    number = _ARITHMETIC.multiply(Decimal(m["num"].replace(",", "")), scale)
    if m["sign"] in _NEGATIVE:
        number = -number
    # "+ 0.0" turns a negative zero ("-0") into plain 0.0.
    value = float(number) + 0.0
    if not math.isfinite(value):
        return CellValue(None, UNPARSED, raw)  # 309 digits and more are inf
    return CellValue(value, NUMBER, raw)


_PARSE_IN = {unit: text_cache(maxsize=65536)(partial(_parse, unit=unit)) for unit in sorted(UNITS)}


def parse_value(raw: str, unit: str = "count") -> CellValue:
    """Parse one cell's text for a column of the given unit ("count" or "wan_yuan")."""
    parse = _PARSE_IN.get(unit)
    if parse is None:
        # A typo in the dictionary must fail loudly, not turn every cell into "unparsed".
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    return parse(raw)


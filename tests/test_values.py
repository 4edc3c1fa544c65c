"""Tests for transform.values.parse_value: cell text -> (value, status)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govreports.transform.values import NA_MARKERS, CellValue, parse_value

# (raw, expected value) for cells that parse to a number in a count column.
COUNT_NUMBERS = [
    ("0", 0.0),
    ("0 ", 0.0),
    ("　　    0", 0.0),
    ("\u00a016363\u00a0", 16363.0),
    ("1 6 3 6 3", 16363.0),  # whitespace anywhere is dropped
    ("\u200b12", 12.0),  # zero-width space from Word-pasted HTML
    ("38.441094", 38.441094),
    ("1,077", 1077.0),
    ("1，077", 1077.0),
    ("12,345,678", 12345678.0),
    ("1,234.5", 1234.5),
    ("１２３", 123.0),
    ("１，０７７", 1077.0),
    ("３８．５", 38.5),
    ("007", 7.0),
    # signs
    ("+461", 461.0),
    ("-8", -8.0),
    ("－8", -8.0),  # full-width minus
    ("＋8", 8.0),  # full-width plus
    ("\u22128", -8.0),  # U+2212 MINUS SIGN
    ("--253", -253.0),
    ("-0", 0.0),
    ("减6922", -6922.0),
    ("增98", 98.0),
    ("减少12", -12.0),
    ("增加3", 3.0),
    ("減6922", -6922.0),  # traditional mirror
    ("减 6922", -6922.0),
    # count words
    ("5个", 5.0),
    ("16件", 16.0),
    ("3项", 3.0),
    ("2条", 2.0),
    ("4次", 4.0),
    ("9人", 9.0),
    ("1宗", 1.0),
    ("6家", 6.0),
    ("7起", 7.0),
    ("8份", 8.0),
    ("5個", 5.0),
    ("+3项", 3.0),
    ("减2件", -2.0),
    ("-1,077件", -1077.0),
    ("5（个）", 5.0),
    ("5(个)", 5.0),
    # 万 / 亿 in a count column scale the number
    ("210万", 2_100_000.0),
    ("1.5万", 15_000.0),
    ("2亿", 200_000_000.0),
]

# (raw, expected value) for cells in a wan_yuan (万元) column.
WAN_YUAN_NUMBERS = [
    ("210万", 210.0),
    ("210", 210.0),
    ("210万元", 210.0),
    ("210(万元)", 210.0),
    ("210（万元）", 210.0),
    ("103.3879万元", 103.3879),
    ("712.187895万元", 712.187895),
    ("38.441094", 38.441094),
    ("251000元", 25.1),
    ("251,000元", 25.1),
    ("1元", 0.0001),
    ("3元", 0.0003),
    ("1.2亿元", 12000.0),
    ("1.2亿", 12000.0),
    ("-210万元", -210.0),
    ("减5万元", -5.0),
    ("+251000元", 25.1),
    ("１０３．３８７９万元", 103.3879),
    ("210萬元", 210.0),
]

NA_CELLS = [
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
    " / ",
    "　无　",
    "／",
    "\u2212",
]
BLANK_CELLS = ["", " ", "  ", "　", "\u00a0", "\n\t", "\u3000\u3000"]

UNPARSED_COUNT = [
    "增",
    "减",
    "见附件",
    "3/5",
    "约100",
    "三",
    "十二",
    "abc",
    "1,07",  # not a thousands grouping: never guess
    "1.2.3",
    ".5",
    "5.",
    "+-5",
    "---5",
    "5-",
    "100%",
    "5万元",  # money in a count column
    "251000元",
    "1.2亿元",
    "5个件",
    "5（个",
    "(5)",
    "１２３abc",
]

UNPARSED_WAN_YUAN = [
    "5个",  # count word in a money column
    "5(个)",
    "16件",
    "见附件",
    "约100万元",
    "三万元",
]


@pytest.mark.parametrize(("raw", "expected"), COUNT_NUMBERS)
def test_count_numbers(raw: str, expected: float) -> None:
    assert parse_value(raw) == CellValue(expected, "number", raw)
    assert parse_value(raw, "count") == CellValue(expected, "number", raw)


@pytest.mark.parametrize(("raw", "expected"), WAN_YUAN_NUMBERS)
def test_wan_yuan_numbers(raw: str, expected: float) -> None:
    # Exact equality on purpose: money conversions go through Decimal.
    assert parse_value(raw, "wan_yuan") == CellValue(expected, "number", raw)


@pytest.mark.parametrize("raw", NA_CELLS)
@pytest.mark.parametrize("unit", ["count", "wan_yuan"])
def test_na_markers(raw: str, unit: str) -> None:
    assert parse_value(raw, unit) == CellValue(None, "na", raw)


@pytest.mark.parametrize("marker", NA_MARKERS)
def test_every_listed_marker_is_na(marker: str) -> None:
    assert parse_value(marker).status == "na"


@pytest.mark.parametrize("raw", BLANK_CELLS)
@pytest.mark.parametrize("unit", ["count", "wan_yuan"])
def test_blank(raw: str, unit: str) -> None:
    assert parse_value(raw, unit) == CellValue(None, "blank", raw)


@pytest.mark.parametrize("raw", UNPARSED_COUNT)
def test_unparsed_count(raw: str) -> None:
    assert parse_value(raw) == CellValue(None, "unparsed", raw)


@pytest.mark.parametrize("raw", UNPARSED_WAN_YUAN)
def test_unparsed_wan_yuan(raw: str) -> None:
    assert parse_value(raw, "wan_yuan") == CellValue(None, "unparsed", raw)


@pytest.mark.parametrize("raw", ["　　    0", "0 ", " 1，077 ", "１２３", "\t减6922\n", ""])
def test_raw_preserved_exactly(raw: str) -> None:
    assert parse_value(raw).raw == raw


def test_zero_is_not_blank_or_na() -> None:
    assert parse_value("0").value == 0.0
    assert parse_value("0").status == "number"
    assert parse_value("").value is None
    assert parse_value("-").value is None


def test_negative_zero_is_plain_zero() -> None:
    import math

    assert math.copysign(1.0, parse_value("-0").value) == 1.0


def test_unit_matters_for_wan() -> None:
    assert parse_value("210万", "count").value == 2_100_000.0
    assert parse_value("210万", "wan_yuan").value == 210.0


def test_unknown_unit_raises() -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        parse_value("5", "yuan")


def test_cell_value_is_frozen() -> None:
    cell = parse_value("5")
    with pytest.raises(AttributeError):
        cell.value = 6.0  # type: ignore[misc]


def test_value_is_float() -> None:
    assert type(parse_value("5").value) is float
    assert type(parse_value("5个").value) is float


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_any_integer_round_trips(n: int) -> None:
    assert (parse_value(str(n)).value, parse_value(str(n)).status) == (float(n), "number")
    grouped = f"{n:,}"
    assert (parse_value(grouped).value, parse_value(grouped).status) == (float(n), "number")


@pytest.mark.parametrize("suffix", ["", "万", "亿", "元", "件"])
@pytest.mark.parametrize("unit", ["count", "wan_yuan"])
def test_a_million_digits_is_unparsed_not_an_exception(suffix: str, unit: str) -> None:
    """Times 万 or 亿, a million digits passes Decimal's exponent limit (it raised decimal.Overflow)."""
    raw = "1" * 1_000_000 + suffix
    value = parse_value(raw, unit)
    assert (value.status, value.value, value.raw) == ("unparsed", None, raw)

"""Report files as agencies really make them (tests/make_real_files.py): pages printed to PDF by Chromium,
its pagination cutting the tables (and rows) across pages, with and without its running header and footer;
and pages converted to DOCX and DOC by LibreOffice. Each reads back to exactly what its page printed."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest

from govreports.extract import convert
from govreports.extract.chinese import simplify, unify_radicals
from govreports.extract.document import read_document
from govreports.flows.parse import parse_report
from govreports.transform.report import parse_document
from tests.make_real_files import OUT, Made, page_html, spec_of
from tests.make_real_files import convert as soffice_convert
from tests.render import expected, random_spec, render

MADE = [Made(**m) for m in json.loads((OUT / "manifest.json").read_text(encoding="utf-8"))]
needs_soffice = pytest.mark.skipif(convert.converter() is None, reason=f"no LibreOffice on PATH: {convert.INSTALL}")


def _values(report) -> dict[tuple[str, str], tuple[str, float | None]]:
    return {(f.metric, f.applicant or ""): (f.value_status, f.value) for f in report.fact_rows if f.metric}


@pytest.mark.parametrize("made", [pytest.param(m, id=m.file, marks=[needs_soffice] if m.file.endswith(".doc") else [])
                                  for m in MADE])
def test_each_real_file_reads_back_exactly(made: Made) -> None:
    doc = read_document((OUT / made.file).read_bytes(), made.file)
    report = parse_document(doc)
    assert _values(report) == expected(spec_of(made))
    assert not [p for p in report.meta.problems if "unparsed" in p or "cells for" in p]
    spec = spec_of(made)
    assert report.meta.agency == spec.agency and report.meta.year == spec.year  # no radical, no browser title
    if made.file.endswith(".pdf"):
        pages = {f.page for f in report.fact_rows}
        assert len(pages) >= 3 and None not in pages  # the tables ran over page breaks, each cell has its page


def test_the_makers_are_all_there() -> None:
    """Both templates, both page styles, a browser PDF with and one without its header and footer, DOCX, DOC."""
    assert {m.maker for m in MADE} == {"chromium", "chromium+header", "soffice-docx", "soffice-doc"}
    assert {(m.style, m.template) for m in MADE} == {(s, t) for s in ("html_plain", "html_word")
                                                    for t in ("2019", "2021")}


@needs_soffice
@pytest.mark.parametrize("to", ["docx", "doc"])
def test_a_page_converted_by_libreoffice_now_reads_back_exactly(to: str) -> None:
    """The converter as installed today (the committed files were made by another version, perhaps)."""
    made = Made(f"now.{to}", f"soffice-{to}", "html_word", 205, "2021", True)
    with tempfile.TemporaryDirectory() as tmp:
        data = soffice_convert(page_html(made), to, Path(tmp))
    assert _values(parse_report(data, made.file)) == expected(spec_of(made))


def test_radicals_and_invisible_characters_become_the_text_they_stand_for() -> None:
    assert unify_radicals("⾏政许可\x01 ⻔户⽹站\u200b") == "行政许可 门户网站"
    assert simplify("⾏政") == "行政"  # labels are matched through simplify


def test_a_row_whose_label_is_not_known_keeps_its_values_unparsed_never_shifted() -> None:
    """A label cut short (as a page break cut it) under a group cell: its values belong to a row that is not
    certain, so they are kept with their raw text, not read into the group's row one column over."""
    spec = random_spec(random.Random(7), "2021", allow_blanks=False)
    page = render(spec, "html_plain").decode("utf-8")
    assert page.count("1.属于国家秘密") == 1
    report = parse_report(page.replace("1.属于国家秘密", "1.属于国").encode("utf-8"), "cut.html")
    got = {(f.metric, f.applicant or ""): f for f in report.fact_rows}
    want = expected(spec)
    cut = [f for f in report.fact_rows if f.metric and f.metric.startswith("outcome_withheld")
           and f.row_label.startswith("本年度办理结果/不予公开") and f.value_status == "unparsed"]
    assert len(cut) == 7 and all(f.value is None and f.raw for f in cut)
    assert not any(k[0] == "outcome_withheld" and f.value_status == "number" for k, f in got.items())
    # Every other cell exactly as printed.
    others = {k: v for k, v in want.items() if k[0] != "outcome_withheld_state_secret"}
    assert {k: (got[k].value_status, got[k].value) for k in others if k in got} == others
    assert any("unknown text" in p for p in report.meta.problems)


def _piece(top: float, rows: list[list[str]], height: float = 792.0, row_h: float = 20.0):
    """A ruled piece of two columns starting at `top`, one 20-point row per entry."""
    from govreports.extract.pdf import Ruled

    cells = [((x0, top + i * row_h, x1, top + (i + 1) * row_h), text)
             for i, row in enumerate(rows) for (x0, x1), text in zip(((30.0, 200.0), (200.0, 300.0)), row, strict=True)]
    return Ruled(top, 30.0, 300.0, cells, top + len(rows) * row_h, height)


@pytest.mark.parametrize(("next_row", "rows"), [
    (["家秘密", ""], [["信息内容", "总计"], ["1.属于国家秘密", "80"]]),  # the break cut the row: one row again
    (["行政处罚", "34"], [["信息内容", "总计"], ["行政许可", "12"], ["行政处罚", "34"]]),  # numbers in both: two rows
])
def test_a_row_is_joined_across_the_page_break_only_when_the_break_cut_it(next_row, rows) -> None:
    """A table that runs down to the bottom margin (as wide as the top margin the next page starts at)."""
    from govreports.extract.pdf import _grid

    first = _piece(752.0 - 40.0, [["信息内容", "总计"], [rows[1][0] if next_row[1] else "1.属于国", rows[1][1]]])
    table = _grid([(1, first), (2, _piece(40.0, [next_row, ["其他", "1"]]))], 0)
    texts = [[c.text for c in row if not c.copy] for row in table.rows]
    assert texts == [*rows, ["其他", "1"]]

"""PDF reports read back: real PDFs written by reportlab with a CJK font (tests/filerender.py), read by
extract/pdf.py, parsed by transform, give exactly the cells the spec printed (tests/render.py)."""

from __future__ import annotations

import random

import pytest

from govreports.extract.document import ParseFailure
from govreports.extract.pdf import read_pdf
from govreports.transform.report import ParsedReport, parse_document
from tests.filerender import render_image_pdf, render_pdf
from tests.render import ReportSpec, expected, random_spec
from tests.test_property import _read


def assert_parsed(spec: ReportSpec, parsed: ParsedReport) -> None:
    """Every printed cell once, under its metric and applicant, with its value; the report's identity."""
    got, want = _read(parsed.facts), expected(spec)
    wrong = {k: (want.get(k), got.get(k)) for k in want.keys() | got.keys() if want.get(k) != got.get(k)}
    assert not wrong, f"{len(wrong)} cells differ (expected, parsed): {dict(list(wrong.items())[:5])}; " \
                      f"problems: {parsed.meta.problems[:5]}"
    assert (parsed.meta.agency, parsed.meta.year, parsed.meta.template) == (spec.agency, spec.year, spec.template)


def _spec(seed: str, template: str, blanks: bool = True) -> ReportSpec:
    return random_spec(random.Random(seed), template=template, allow_blanks=blanks)


@pytest.mark.parametrize("template", ["2019", "2021"])
@pytest.mark.parametrize("seed", ["a", "b"])
def test_ruled_pdf_parses_back(template: str, seed: str) -> None:
    spec = _spec(f"ruled-{seed}", template)
    doc = read_pdf(render_pdf(spec), "report.pdf")
    assert doc.kind == "pdf" and doc.source == "report.pdf" and len(doc.content_sha256) == 64
    assert doc.title == f"{spec.agency}{spec.year}年政府信息公开工作年度报告"  # real Chinese from the CID font
    assert_parsed(spec, parse_document(doc))


@pytest.mark.parametrize(("footer", "repeat_header", "page_h"),
                         [("— {n} —", False, 640), ("第 {n} 页", True, 640), ("第 {n} 页", False, 600)])
def test_table_over_a_page_break_is_one_table(footer: str, repeat_header: bool, page_h: float) -> None:
    spec = _spec("split-— {n} —-False", "2021")
    doc = read_pdf(render_pdf(spec, footer=footer, repeat_header=repeat_header, page_h=page_h))
    table3 = next(t for t in doc.tables if any(c.text == "申请人情况" for row in t.rows for c in row))
    assert len({c.page for row in table3.rows for c in row}) == 2, "the fixture must run 三 over a page break"
    # The header is read once: 申请人情况 heads one row of the table, however many pages it covers.
    assert sum(c.text == "申请人情况" for t in doc.tables for row in t.rows for c in row if not c.copy) == 1
    assert not any(c.text.startswith(("—", "第 ")) for t in doc.tables for row in t.rows for c in row)
    assert_parsed(spec, parse_document(doc))
    facts = parse_document(doc).facts
    assert facts["table_index"].nunique() == 3  # 二, 三 and 四, each one table


@pytest.mark.parametrize("template", ["2019", "2021"])
def test_pdf_without_lines_parses_back_with_labels_rejoined(template: str) -> None:
    spec = _spec(f"unruled-{template}", template, blanks=False)
    doc = read_pdf(render_pdf(spec, ruled=False))
    cells = {c.text.replace(" ", "") for t in doc.tables for row in t.rows for c in row}
    # Wrapped over lines in its narrow column, the label is one cell again.
    assert "1.本机关不掌握相关政府信息" in cells
    assert_parsed(spec, parse_document(doc))


def test_pdf_without_lines_never_shifts_a_value_past_a_blank_cell() -> None:
    """Without lines a blank cell prints nothing: the row comes out short and unparsed, not shifted."""
    for i in range(4):
        spec = _spec(f"unruled-blanks-{i}", "2021")
        got, want = _read(parse_document(read_pdf(render_pdf(spec, ruled=False))).facts), expected(spec)
        shifted = {k: v for k, v in got.items() if v[0] != "unparsed" and want.get(k) != v}
        assert not shifted, shifted


def test_merged_cells_cover_their_grid_positions() -> None:
    doc = read_pdf(render_pdf(_spec("merged", "2019")))
    table3 = next(t for t in doc.tables if any(c.text == "申请人情况" for row in t.rows for c in row))
    corner = [c for row in table3.rows[:3] for c in row[:3]]
    assert len(corner) == 9 and corner[0].text.startswith("（本列数据") and sum(not c.copy for c in corner) == 1
    assert {len(row) for row in table3.rows} == {10}
    assert all(c.page is not None for row in table3.rows for c in row)


def test_image_only_pdf_is_refused_with_its_page_count() -> None:
    with pytest.raises(ParseFailure) as info:
        read_pdf(render_image_pdf(pages=3), "scan.pdf")
    assert info.value.reason == "no text layer (scanned)"
    assert "3 pages" in info.value.detail


@pytest.mark.parametrize("data", [b"%PDF-1.4\nnot really a pdf", b"<html>a page</html>"])
def test_unreadable_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(ParseFailure) as info:
        read_pdf(data)
    assert info.value.reason == "unreadable file"


def test_empty_pdf_input() -> None:
    with pytest.raises(ParseFailure, match="empty input"):
        read_pdf(b"  ")


def test_files_are_told_by_their_first_bytes_and_parsed_from_the_cli(tmp_path) -> None:
    """`govreports parse` reads a PDF and a DOCX as it reads a page (read_document dispatches on the bytes,
    whatever the name says); a scan and a Word 97-2003 file are refused with their reasons, exit 2."""
    import subprocess

    from govreports.extract.document import read_document
    from tests import CLI
    from tests.filerender import render_docx

    spec = _spec("cli", "2021")
    (tmp_path / "report.bin").write_bytes(render_pdf(spec))
    (tmp_path / "report.docx").write_bytes(render_docx(spec))
    (tmp_path / "scan.pdf").write_bytes(render_image_pdf(pages=3))
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    assert read_document((tmp_path / "report.docx").read_bytes()).kind == "docx"
    ok = subprocess.run([*CLI, "parse", "--format", "csv", str(tmp_path / "report.bin"), str(tmp_path / "report.docx")],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    rows = ok.stdout.splitlines()[1:]
    assert len(rows) == 2 * len(expected(spec)) and rows  # every printed cell, once from each file
    bad = subprocess.run([*CLI, "parse", str(tmp_path / "scan.pdf"), str(tmp_path / "old.doc")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and not bad.stdout
    assert f"{tmp_path / 'scan.pdf'}: no text layer (scanned): 3 pages" in bad.stderr
    from govreports.extract.convert import converter

    reason = "needs converter" if converter() is None else "unreadable file"  # zeros after the OLE mark
    assert f"{tmp_path / 'old.doc'}: {reason}" in bad.stderr

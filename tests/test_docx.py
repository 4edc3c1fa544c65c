"""DOCX reports read back: Word files written by python-docx (tests/filerender.py), merged cells from
gridSpan and vMerge, read by extract/docx.py and parsed by transform."""

from __future__ import annotations

import io
import random

import pytest

from govreports.extract.document import ParseFailure
from govreports.extract.docx import read_docx
from govreports.transform.report import parse_document
from tests.filerender import render_docx
from tests.render import random_spec
from tests.test_pdf import assert_parsed


@pytest.mark.parametrize("template", ["2019", "2021"])
@pytest.mark.parametrize("captions_as_paragraphs", [False, True])
def test_docx_parses_back(template: str, captions_as_paragraphs: bool) -> None:
    spec = random_spec(random.Random(f"docx-{template}-{captions_as_paragraphs}"), template=template)
    doc = read_docx(render_docx(spec, captions_as_paragraphs=captions_as_paragraphs), "report.docx")
    assert doc.kind == "docx" and doc.source == "report.docx"
    assert doc.title == f"{spec.agency}{spec.year}年政府信息公开工作年度报告"
    assert_parsed(spec, parse_document(doc))


def test_caption_paragraphs_stand_between_their_tables() -> None:
    spec = random_spec(random.Random("captions"), template="2021")
    doc = read_docx(render_docx(spec, captions_as_paragraphs=True))
    firsts = [t.rows[0][0].text for t in doc.tables]
    at = next(i for i, text in enumerate(firsts) if text.startswith("第二十条"))
    assert firsts[at + 1] == "信息内容"  # the caption, then its block's table


def test_merged_cells_expand_like_html_spans() -> None:
    doc = read_docx(render_docx(random_spec(random.Random("merged"), template="2019")))
    table3 = next(t for t in doc.tables if any(c.text == "申请人情况" for row in t.rows for c in row))
    assert {len(row) for row in table3.rows} == {10}
    corner = [c for row in table3.rows[:3] for c in row[:3]]  # gridSpan 3 x vMerge 3
    assert corner[0].text.startswith("（本列数据") and not corner[0].copy
    assert all(c.copy and c.text == corner[0].text for c in corner[1:])
    assert [c.copy for c in table3.rows[1]][3:] == [False, False, True, True, True, True, False]


@pytest.mark.parametrize("data", [b"PK\x03\x04 not a zip", b"plain text"])
def test_unreadable_docx_is_refused(data: bytes) -> None:
    with pytest.raises(ParseFailure) as info:
        read_docx(data)
    assert info.value.reason == "unreadable file"


def test_docx_without_tables_reads_as_text() -> None:
    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    document.add_paragraph("某县民政局2022年政府信息公开工作年度报告")
    document.save(buffer)
    doc = read_docx(buffer.getvalue())
    assert (doc.agency, doc.year) == ("某县民政局", 2022)
    with pytest.raises(ParseFailure, match="no report tables found"):
        parse_document(doc)

"""Reports read from files, on real DuckDB files built from a lake: the `page` provenance column, the
one-report rule (a page before its file), the `coverage` table with each status, and how many agencies
`compare` and the trend views say are missing in each year."""

from __future__ import annotations

import hashlib
import random

import pandas as pd
import pytest

from govreports.extract.sources import Source
from govreports.flows import steps
from govreports.flows.config import Warehouse
from govreports.load.compare import compare, missing, missing_line
from govreports.load.lake import Lake, ReportBundle
from govreports.load.warehouse import build, connect
from tests.filerender import render_docx, render_image_pdf, render_pdf
from tests.loadhelp import bundle
from tests.render import random_spec

CITY = "浙江省/宁波市"
HOST = "http://127.0.0.1"
# A report page that names the report but prints no table: its body is the link to the file.
NO_TABLES = ("<html><head><title>{name}2021年政府信息公开工作年度报告</title></head><body>"
             "<h1>{name}2021年政府信息公开工作年度报告</h1><p>附件：<a href='r.pdf'>年度报告.pdf</a></p>"
             "</body></html>")
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504


def _source(agency_id: str, name: str) -> Source:
    return Source(agency_id, name, "浙江省", "宁波市", name[:3], "", "county", "department", (), (), ("127.0.0.1",))


REGISTRY = [_source("a", "甲区交通局"), _source("b", "乙区交通局"), _source("c", "丙区交通局"),
            _source("d", "丁区交通局"), _source("e", "戊区交通局"), _source("f", "己区交通局")]
BY_ID = {s.agency_id: s for s in REGISTRY}


def _version(agency_id: str, data: bytes, url: str, year: int = 2021, source_page: str | None = None,
             form: str | None = None, seen: str = "2024-01-01") -> ReportBundle:
    """One version through the pipeline's own parse stage, with the fields the crawl adds for a file."""
    ref = steps.PageRef(agency_id, f"{HOST}/{agency_id}/{url}", hashlib.sha256(data).hexdigest(), year,
                        pd.Timestamp(seen, tz="UTC"), linked_from=source_page and f"{HOST}/{agency_id}/{source_page}")
    b = steps.parse_page(data, ref, BY_ID[agency_id], pd.Timestamp.now(tz="UTC"))
    b.report.setdefault("form", form)
    return b


def _pdf(agency_id: str, year: int = 2021) -> bytes:
    spec = random_spec(random.Random(agency_id), template="2021", year=year, agency=BY_ID[agency_id].name)
    return render_pdf(spec, page_h=640)  # 三 runs over a page break: cells on two pages


def _without_converter(make):
    """A machine without LibreOffice (no soffice on PATH), whether or not this one has it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", "/nonexistent")
        return make()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    wh = Warehouse(str(tmp_path_factory.mktemp("coverage")))
    a_page = bundle("a", "甲区交通局", 2021, "2021", 500, 50, region=f"{CITY}/甲区")
    a_page.report["form"] = "text"
    no_tables_b = NO_TABLES.format(name="乙区交通局").encode()
    versions = [
        # a: a page with tables and the file it links, seen later: the page is the report, the file kept.
        a_page, _version("a", _pdf("a"), "r.pdf", source_page="2021.html", form="pdf", seen="2024-02-01"),
        # b: a page without tables and its file: the file is the report.
        _version("b", no_tables_b, "2021.html", form="html"),
        _version("b", _pdf("b"), "r.pdf", source_page="2021.html", form="pdf"),
        # c: a page without tables linking a scan (the scan says more); 2022 a Word 97 file.
        _version("c", NO_TABLES.format(name="丙区交通局").encode(), "2021.html"),
        _version("c", render_image_pdf(2), "r.pdf", source_page="2021.html"),
        _without_converter(lambda: _version("c", OLE, "2022.doc", year=2022)),
        # d: a broken DOCX (no source page, no form: its URL tells); 2022 a page without tables, no file.
        _version("d", b"PK\x03\x04 not a zip", "2021.docx"),
        _version("d", NO_TABLES.format(name="丁区交通局").replace("2021", "2022").encode(), "2022.html",
                 year=2022),
        # e: 2021 a page that is no report; 2022 parsed.
        _version("e", b"<html><body><p>hello</p></body></html>", "2021.html"),
        bundle("e", "戊区交通局", 2022, "2021", 300, 30, region=f"{CITY}/戊区"),
        # f: nothing at all.
    ]
    Lake(wh.lake).write(versions)
    return steps.refresh(wh, REGISTRY), versions


def q(db, sql, params=None):
    with connect(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_the_page_column_reaches_the_database_for_a_pdf_and_is_null_for_a_page(built):
    db, versions = built
    b_file = versions[3].report["report_id"]
    pages = [p for (p,) in q(db, "SELECT DISTINCT page FROM facts WHERE report_id = ? ORDER BY 1", [b_file])]
    assert pages[0] == 1 and None not in pages and len(pages) >= 2
    # 三 of the fixture runs over the page break: its cells sit on two pages.
    assert q(db, "SELECT count(DISTINCT page) FROM facts WHERE agency_id = 'b' AND section = '三'") == [(2,)]
    assert q(db, "SELECT count(*), count(page) FROM facts WHERE agency_id = 'a'")[0][1] == 0
    assert q(db, "SELECT source FROM facts WHERE agency_id = 'b' LIMIT 1") == [(f"{HOST}/b/r.pdf",)]


def test_a_docx_report_has_no_page(tmp_path):
    spec = random_spec(random.Random("docx"), template="2021", year=2021, agency="甲区交通局")
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([_version("a", render_docx(spec), "r.docx", form="docx")])
    db = build(lake, tmp_path / "g.duckdb")
    assert q(db, "SELECT count(*) > 0, count(page) FROM facts") == [(True, 0)]


def test_one_report_a_page_before_its_file(built):
    db, versions = built
    a_page, a_file, b_page, b_file = (v.report["report_id"] for v in versions[:4])
    rows = dict(q(db, "SELECT report_id, is_current FROM reports_all_versions WHERE agency_id IN ('a', 'b')"))
    # The page with tables is the report though its file was seen later; the file is kept beside it.
    assert rows[a_page] is True and rows[a_file] is False
    # A page without tables fails: its file, parsed, is the report.
    assert rows[b_page] is False and rows[b_file] is True
    assert q(db, "SELECT agency_id, form, source_page FROM reports WHERE agency_id IN ('a', 'b') ORDER BY 1") == [
        ("a", "text", None), ("b", "pdf", f"{HOST}/b/2021.html")]
    assert q(db, "SELECT count(*) FROM reports WHERE year = 2021 AND agency_id IN ('a', 'b')") == [(2,)]
    # A version never read (no form) is a file by the page that linked it, else by its URL's suffix.
    assert q(db, "SELECT is_file(NULL, NULL, 'http://x/r.PDF?id=1'), is_file(NULL, NULL, 'http://x/r.docx'), "
                 "is_file(NULL, NULL, 'http://x/pdf.html'), is_file(NULL, 'http://x/', 'http://x/get?id=1'), "
                 "is_file('html', NULL, 'http://x/r.pdf')") == [(True, True, False, True, False)]


def test_coverage_has_a_row_per_registry_agency_and_year_with_its_status(built):
    db, versions = built
    got = {(a, y): (s, rid, url) for a, y, s, rid, url in q(
        db, "SELECT agency_id, year, status, report_id, url FROM coverage")}
    status = {k: v[0] for k, v in got.items()}
    assert status == {
        ("a", 2021): "parsed", ("a", 2022): "not_found",
        ("b", 2021): "parsed_from_file", ("b", 2022): "not_found",
        ("c", 2021): "image_only", ("c", 2022): "needs_converter",
        ("d", 2021): "file_unreadable", ("d", 2022): "page_without_tables",
        ("e", 2021): "failed", ("e", 2022): "parsed",
        ("f", 2021): "not_found", ("f", 2022): "not_found",
    }
    assert got[("a", 2021)][1:] == (versions[0].report["report_id"], f"{HOST}/a/2021.html")
    assert got[("b", 2021)][1:] == (versions[3].report["report_id"], f"{HOST}/b/r.pdf")
    assert got[("c", 2021)][2] == f"{HOST}/c/r.pdf"
    assert got[("f", 2021)][1:] == (None, None)
    assert q(db, "SELECT DISTINCT parent_region FROM coverage") == [(CITY,)]
    assert q(db, "SELECT count(*) FROM sources") == [(6,)]


def test_coverage_without_a_registry_lists_the_agencies_of_the_lake(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a", "甲区交通局", 2020, "2019", 5, 1), bundle("b", "乙区交通局", 2022, "2021", 5, 1)])
    db = build(lake, tmp_path / "g.duckdb")
    assert q(db, "SELECT agency_id, year, status FROM coverage ORDER BY 1, 2") == [
        ("a", 2020, "parsed"), ("a", 2021, "not_found"), ("a", 2022, "not_found"),
        ("b", 2020, "not_found"), ("b", 2021, "not_found"), ("b", 2022, "parsed")]


def test_years_covered_include_those_of_links_the_fetch_log_saw(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a", "甲区交通局", 2021, "2021", 5, 1)])
    seen = pd.DataFrame([{"url": f"{HOST}/x.pdf", "sha256": "0" * 64, "last_seen": pd.Timestamp("2024-01-01", tz="UTC"),
                          "year": 2023}])
    db = build(lake, tmp_path / "g.duckdb", versions=seen)
    assert q(db, "SELECT year, status FROM coverage ORDER BY 1") == [
        (2021, "parsed"), (2022, "not_found"), (2023, "not_found")]


def test_compare_and_the_trend_views_say_how_many_are_missing(built):
    db, _ = built
    with connect(db) as con:
        counts = missing(con, CITY, (2021, 2022))
        wide, _ = compare(con, "licensing", region=CITY, years=(2021, 2022))
        assert missing(con, "江苏省").empty
    assert counts.to_dict("records") == [{"year": 2021, "agencies": 6, "reporting": 2, "missing": 4},
                                         {"year": 2022, "agencies": 6, "reporting": 1, "missing": 5}]
    assert missing_line(counts).endswith(": 2021 4 of 6, 2022 5 of 6")
    assert set(wide["agency"]) >= {"甲区交通局", "戊区交通局"}
    assert q(db, "SELECT year, agencies, agencies_reporting, missing FROM licensing_trend WHERE agency_id = 'e'") == [
        (2022, 6, 1, 5)]

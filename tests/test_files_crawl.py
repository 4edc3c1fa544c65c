"""Reports published as files (issue 15), fetched and read end to end on a real site on 127.0.0.1: a PDF
linked from the listing, a page with no tables that links its DOCX, a page with tables that also links
its PDF; unrelated files on those pages (a spreadsheet, a notice) left alone; a file over the file cap
refused. Files are real PDFs and DOCX files rendered by tests/filerender.py."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from govreports.extract.crawl import CrawlResult, crawl
from govreports.extract.fetch import Fetcher
from govreports.extract.fetchlog import FetchLog
from govreports.extract.rawzone import RawZone
from govreports.extract.sources import Source
from govreports.flows import steps
from tests.filerender import render_docx, render_pdf
from tests.httpserver import LocalServer, Reply, Request, serve
from tests.render import ReportSpec, expected, random_spec, render

NAME = "鄞州区测试局"
HTML = {"Content-Type": "text/html; charset=utf-8"}
SPECS = {year: random_spec(random.Random(f"files-{year}"), template="2021", year=year, agency=NAME)
         for year in (2021, 2022, 2023)}


def title(year: int) -> str:
    return f"{NAME}{year}年政府信息公开工作年度报告"


def page_without_tables(year: int, links: str) -> str:
    return (f'<html><head><meta charset="utf-8"><title>{title(year)}</title></head><body>'
            f"<h1>{title(year)}</h1><p>发布日期：{year + 1}-01-20</p>{links}</body></html>")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    yield from serve("127.0.0.1")


def build_site(srv: LocalServer, chrome_kb: int = 0) -> dict[str, bytes]:
    """The agency's listing: 2021 only as a PDF; 2022 a page with no tables linking its DOCX (and a notice and a
    spreadsheet); 2023 a page with its tables that also links its PDF (its chrome padded to `chrome_kb` KB).
    Returns the bodies by path."""
    page_2023 = render(SPECS[2023], "html_plain", chrome_kb=chrome_kb).decode("utf-8").replace(
        "</body>", f'<p>附件：<a href="/f/2023.pdf">{title(2023)}.pdf</a></p></body>')
    bodies = {
        "/list/index.html": f"""<html><head><meta charset="utf-8"></head><body><ul>
<li><a href="/r/2021.pdf">{title(2021)}</a></li>
<li><a href="/r/2022.html">{title(2022)}</a></li>
<li><a href="/r/2023.html">{title(2023)}</a></li></ul></body></html>""".encode(),
        "/r/2021.pdf": render_pdf(SPECS[2021]),
        "/r/2022.html": page_without_tables(2022, f"""<p>附件：<a href="/f/2022.docx">{title(2022)}.docx</a></p>
<p>相关：<a href="/f/notice.pdf">关于报送2022年度政府信息公开工作年度报告的通知.pdf</a></p>
<p><a href="/f/2022.xls">{title(2022)}附表.xls</a></p>""").encode(),
        "/f/2022.docx": render_docx(SPECS[2022]),
        "/f/notice.pdf": render_pdf(SPECS[2022]),
        "/f/2022.xls": b"PK\x03\x04 a spreadsheet",
        "/r/2023.html": page_2023.encode(),
        "/f/2023.pdf": render_pdf(SPECS[2023]),
    }
    for path, body in bodies.items():
        headers = HTML if path.endswith(".html") else {"Content-Type": "application/octet-stream"}
        tag = f'"{hash(body) & 0xFFFFFF}"'

        def reply(req: Request, body: bytes = body, headers: dict = headers, tag: str = tag) -> Reply:
            if req.headers.get("if-none-match") == tag:
                return Reply(304, b"", {"ETag": tag})
            return Reply(body=body, headers={**headers, "ETag": tag})

        srv.route(path, reply)
    return bodies


def source(srv: LocalServer) -> Source:
    return Source(agency_id="t1", name=NAME, province="浙江省", city="宁波市", county="鄞州区", township="",
                  level="county", kind="department", listing_urls=(srv.url("/list/index.html"),), report_urls=(),
                  hosts=(srv.host,))


def fetcher(**kw: object) -> Fetcher:
    return Fetcher(**{"timeout": 2.0, "retries": 0, "delay": 0.0, "allow_loopback": True, **kw})  # type: ignore[arg-type]


def run(srv: LocalServer, tmp: Path, **kw: object) -> CrawlResult:
    with fetcher(**kw) as f:
        return crawl([source(srv)], RawZone(tmp / "raw"), FetchLog(tmp / "fetch_log"), f)


def test_files_are_fetched_logged_and_linked_to_their_page(server: LocalServer, tmp_path: Path) -> None:
    bodies = build_site(server)
    result = run(server, tmp_path)
    s = result.agencies["t1"]
    # 3 listing links + 2 files the pages link; the notice and the spreadsheet are not the report.
    assert (s.discovered, s.fetched, s.failed, s.not_readable, s.errors) == (5, 5, 0, 0, [])
    assert server.count("/f/notice.pdf") == 0 and server.count("/f/2022.xls") == 0
    log = FetchLog(tmp_path / "fetch_log").frame()
    got = {(u.replace(server.url(""), ""), k, o, None if pd.isna(f) else f.replace(server.url(""), ""))
           for u, k, o, f in zip(log["url"], log["kind"], log["outcome"], log["linked_from"], strict=True)}
    assert got == {("/list/index.html", "listing", "new", None), ("/r/2021.pdf", "file", "new", None),
                   ("/r/2022.html", "report", "new", None), ("/r/2023.html", "report", "new", None),
                   ("/f/2022.docx", "file", "new", "/r/2022.html"), ("/f/2023.pdf", "file", "new", "/r/2023.html")}
    raw = RawZone(tmp_path / "raw")
    files = {p.url.rsplit("/", 1)[-1]: p for p in result.pages if p.kind == "file"}
    assert raw.get(files["2022.docx"].sha256) == bodies["/f/2022.docx"]  # in the raw zone by sha256
    assert files["2022.docx"].year == 2022 and files["2022.docx"].linked_from == server.url("/r/2022.html")
    assert files["2021.pdf"].linked_from is None

    # Nothing changed: every page and file asked conditionally, the files of unchanged pages too.
    again = run(server, tmp_path).agencies["t1"]
    assert (again.discovered, again.unchanged, again.fetched) == (5, 5, 0)
    assert server.count("/f/2022.docx") == 2 and server.count("/f/2023.pdf") == 2


def test_each_file_parses_as_its_report_and_names_its_page(server: LocalServer, tmp_path: Path) -> None:
    build_site(server)
    refs = steps.with_first_seen(steps.refs_from_crawl([run(server, tmp_path)]), FetchLog(tmp_path / "fetch_log"))
    out = steps.parse_pages(str(tmp_path / "raw"), refs, {"t1": source(server)})
    reports = {b.report["url"].replace(server.url(""), ""): b for b in out.bundles}
    assert set(reports) == {"/r/2021.pdf", "/r/2022.html", "/f/2022.docx", "/r/2023.html", "/f/2023.pdf"}
    # The page that only links its file fails; its file is the report, and says which page pointed to it.
    assert reports["/r/2022.html"].report["status"] == "failed"
    assert "no report tables" in reports["/r/2022.html"].report["failure"]
    docx = reports["/f/2022.docx"].report
    assert (docx["status"], docx["year"], docx["form"]) == ("parsed", 2022, "docx")
    assert docx["source_page"] == server.url("/r/2022.html")
    assert docx["content_sha256"] != reports["/r/2022.html"].report["content_sha256"]
    # A page with tables and its PDF: both read, to the same values; the PDF names its page.
    page, pdf = reports["/r/2023.html"].report, reports["/f/2023.pdf"].report
    assert (page["status"], page["form"], page["source_page"]) == ("parsed", "html", None)
    assert (pdf["status"], pdf["form"], pdf["source_page"]) == ("parsed", "pdf", server.url("/r/2023.html"))
    assert _values(reports["/r/2023.html"]) == _values(reports["/f/2023.pdf"]) == _expected(SPECS[2023])
    assert _values(reports["/f/2022.docx"]) == _expected(SPECS[2022])
    assert reports["/r/2021.pdf"].report["source_page"] is None
    assert _values(reports["/r/2021.pdf"]) == _expected(SPECS[2021])


def _values(bundle: steps.ReportBundle) -> dict:
    """(metric, applicant or "") -> (value_status, value), as tests/render.py's `expected` says them."""
    return {(f.metric, f.applicant or ""): (f.value_status, None if pd.isna(f.value) else float(f.value))
            for f in bundle.fact_rows}


def _expected(spec: ReportSpec) -> dict:
    return expected(spec)


def test_a_file_over_the_file_cap_is_refused_while_pages_keep_theirs(server: LocalServer, tmp_path: Path) -> None:
    bodies = build_site(server, chrome_kb=80)
    cap = len(bodies["/f/2022.docx"]) - 1
    assert len(bodies["/r/2023.html"]) > cap  # a page larger than the file cap is still fetched
    result = run(server, tmp_path, max_file_bytes=cap)
    log = FetchLog(tmp_path / "fetch_log").frame()
    by_url = {u.replace(server.url(""), ""): (k, o, e) for u, k, o, e in
              zip(log["url"], log["kind"], log["outcome"], log["error"], strict=True)}
    assert by_url["/f/2022.docx"] == ("file", "failed", f"body larger than {cap} bytes (Content-Length "
                                                        f"{len(bodies['/f/2022.docx'])})")
    assert by_url["/r/2023.html"][:2] == ("report", "new")
    assert "/f/2022.docx" not in {p.url.replace(server.url(""), "") for p in result.pages}
    assert Fetcher().max_file_bytes == 50 * 2**20 and Fetcher().max_bytes == 20 * 2**20


def test_files_count_against_the_report_cap(server: LocalServer, tmp_path: Path) -> None:
    build_site(server)
    s = run(server, tmp_path, max_reports=3).agencies["t1"]
    # The three listing links fill the cap: the files the pages link are counted, not fetched.
    assert (s.discovered, s.fetched, s.capped) == (5, 3, 2)
    assert server.count("/f/2022.docx") == 0 and server.count("/f/2023.pdf") == 0
    s = run(server, tmp_path / "b", max_reports=4).agencies["t1"]
    assert (s.fetched, s.capped) == (4, 1)


def test_a_file_linked_twice_is_fetched_once(server: LocalServer, tmp_path: Path) -> None:
    build_site(server)
    server.route("/r/2021.html", Reply(body=page_without_tables(2021, '<a href="/r/2021.pdf">下载</a>'), headers=HTML))
    src = replace(source(server), report_urls=(server.url("/r/2021.html"),))
    with fetcher() as f:
        result = crawl([src], RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f)
    assert server.count("/r/2021.pdf") == 1
    assert [p.linked_from for p in result.pages if p.url.endswith("/r/2021.pdf")] == [None]  # the listing's


# -- through a real nightly flow ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from govreports.flows import pipeline

    return pipeline


def test_nightly_loads_the_files_as_reports(pipeline, server: LocalServer, tmp_path: Path) -> None:
    from govreports.load.warehouse import connect

    build_site(server)
    sources = tmp_path / "sources.csv"
    sources.write_text("agency_id,name,province,city,county,township,level,kind,listing_urls,report_urls,hosts\n"
                       f"t1,{NAME},浙江省,宁波市,鄞州区,,county,department,{{site}}/list/index.html,,{server.host}\n",
                       encoding="utf-8")
    wh = tmp_path / "wh"
    summary = pipeline.RunSummary(**pipeline.nightly(
        sources_file=str(sources), warehouse=str(wh), site=server.url("").rstrip("/"), allow_loopback=True,
        delay=0.0, timeout=5.0))
    assert (summary.discovered, summary.fetched, summary.parsed, summary.not_readable) == (5, 5, 5, 0)
    with connect(wh / "govreports.duckdb") as con:
        versions = con.execute("SELECT url, year, status FROM reports_all_versions ORDER BY url").fetchall()
        current = dict(con.execute("SELECT year, url FROM reports").fetchall())
        pages = dict(con.execute("SELECT url, source_page FROM reports_all_versions").fetchall())
        coverage = dict(con.execute("SELECT year, status FROM coverage WHERE agency_id = 't1'").fetchall())
        licensing = dict(con.execute("SELECT year, value FROM facts WHERE metric = 'licensing_decisions'").fetchall())
        linked = dict(con.execute("SELECT url, linked_from FROM fetch_log WHERE kind = 'file'").fetchall())
    base = server.url("")
    assert [(u.replace(base, ""), y, s) for u, y, s in versions] == [
        ("/f/2022.docx", 2022, "parsed"), ("/f/2023.pdf", 2023, "parsed"), ("/r/2021.pdf", 2021, "parsed"),
        ("/r/2022.html", 2022, "failed"), ("/r/2023.html", 2023, "parsed")]
    # One report per year: 2021 its PDF, 2022 the DOCX its page links (the page has no tables), 2023 the page
    # with tables, its PDF kept beside it as a version that names the page.
    assert current == {2021: base + "/r/2021.pdf", 2022: base + "/f/2022.docx", 2023: base + "/r/2023.html"}
    assert {u.replace(base, ""): p and p.replace(base, "") for u, p in pages.items() if p} == {
        "/f/2022.docx": "/r/2022.html", "/f/2023.pdf": "/r/2023.html"}
    assert coverage == {2021: "parsed_from_file", 2022: "parsed_from_file", 2023: "parsed"}
    assert licensing == {y: expected(SPECS[y])[("licensing_decisions", "")][1] for y in SPECS}
    assert linked == {base + "/f/2022.docx": base + "/r/2022.html", base + "/f/2023.pdf": base + "/r/2023.html",
                      base + "/r/2021.pdf": None}

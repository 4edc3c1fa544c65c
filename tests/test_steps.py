"""flows.steps on real files: a batch of stored pages parsed, with one page that breaks the parser."""

from __future__ import annotations

import dataclasses
import hashlib

import pandas as pd

from govreports.extract.rawzone import RawZone
from govreports.flows import steps
from tests.loadhelp import page


def test_a_parser_bug_on_one_page_fails_that_page_only(tmp_path, monkeypatch, caplog):
    # A parser bug (an exception that is not a ParseFailure) cannot be produced on demand by a real
    # page, since the fuzz tests fix every one found: the parse is wrapped to raise on one page.
    raw = RawZone(tmp_path / "raw")
    pages = [page(f"{i}号区民政局", 2022, "2021", 10 + i, 2) for i in range(3)]
    refs = []
    for i, data in enumerate(pages):
        sha, _ = raw.put(data)
        refs.append(steps.PageRef(f"a{i}", f"http://127.0.0.1/a{i}/2022.html", sha, 2022, pd.Timestamp.now(tz="UTC")))
    bad = hashlib.sha256(pages[1]).hexdigest()
    real = steps.parse_report

    def parse(data: bytes, **kwargs):
        if hashlib.sha256(data).hexdigest() == bad:
            raise KeyError("a label table without this key")
        return real(data, **kwargs)

    monkeypatch.setattr(steps, "parse_report", parse)
    out = steps.parse_pages(str(tmp_path / "raw"), refs, {})
    statuses = [b.report["status"] for b in out.bundles]
    assert statuses == ["parsed", "failed", "parsed"]
    assert out.bundles[1].report["failure"].startswith("parser error: KeyError")
    assert out.failures == [f"a1 http://127.0.0.1/a1/2022.html: {out.bundles[1].report['failure']}"]
    assert "parser error on http://127.0.0.1/a1/2022.html" in caplog.text  # with its traceback, for a bug report


def test_the_link_names_the_agency_when_neither_registry_nor_page_does(tmp_path):
    data = page("", 2022, "2021", 10, 2)  # a title that names no agency: "2022年政府信息公开工作年度报告"
    sha = hashlib.sha256(data).hexdigest()
    ref = steps.PageRef("a1", "http://127.0.0.1/a1/2022.html", sha, 2022, pd.Timestamp.now(tz="UTC"),
                        link_agency="北仑区民政局")
    bundle = steps.parse_page(data, ref, None, pd.Timestamp.now(tz="UTC"))
    assert bundle.report["status"] == "parsed" and bundle.report["agency"] == "北仑区民政局"
    assert {f.agency for f in bundle.fact_rows} == {"北仑区民政局"}
    assert {f.agency_id for f in bundle.fact_rows} == {"a1"}
    # A page that names its agency keeps it.
    named = page("北仑区司法局", 2022, "2021", 10, 2)
    ref = steps.PageRef("a1", ref.url, hashlib.sha256(named).hexdigest(), 2022, None, link_agency="北仑区民政局")
    assert steps.parse_page(named, ref, None, pd.Timestamp.now(tz="UTC")).report["agency"] == "北仑区司法局"


def test_first_fetch_times_are_read_from_the_log_only_for_pages_to_parse(tmp_path, monkeypatch):
    from govreports.extract.crawl import CrawledPage, CrawlResult
    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(tmp_path / "log")
    first = pd.Timestamp("2025-01-06 08:00", tz="UTC")
    log.append([{"url": "http://127.0.0.1/a/2022.html", "kind": "report", "outcome": "new", "sha256": "1" * 64,
                 "fetched_at": first},
                {"url": "http://127.0.0.1/a/2022.html", "kind": "report", "outcome": "not_modified",
                 "sha256": "1" * 64, "fetched_at": first + pd.Timedelta(days=1)}])
    crawled = CrawlResult(pages=[CrawledPage("a", "http://127.0.0.1/a/2022.html", 2022, "1" * 64, "unchanged",
                                             "utf-8", "", None)], agencies={})
    refs = steps.refs_from_crawl([crawled])
    assert [r.fetched_at for r in refs] == [None]
    assert [r.fetched_at for r in steps.with_first_seen(refs, log)] == [first]  # first fetched, not last seen
    # Nothing to parse (a nightly run where nothing changed): the log is not read at all.
    reads = []
    monkeypatch.setattr(FetchLog, "versions", lambda self: reads.append(self))
    assert steps.with_first_seen([], log) == [] and reads == []


def test_the_pages_own_year_outranks_the_link_and_the_link_outranks_its_guesses(tmp_path):
    data = page("北仑区民政局", 2022, "2021", 10, 2)  # the title says 2022
    ref = steps.PageRef("a1", "http://127.0.0.1/a1/2022.html", hashlib.sha256(data).hexdigest(), 2021, None)
    bundle = steps.parse_page(data, ref, None, pd.Timestamp.now(tz="UTC"))
    assert bundle.report["year"] == 2022 and {f.year for f in bundle.fact_rows} == {2022}


def test_one_precedence_for_agency_and_year():
    from govreports.extract.document import Document
    from govreports.transform.report import decide_identity

    guess = Document(kind="text", tables=[], text="", agency="某局", agency_source="metadata", year=2020,
                     year_source="text")
    assert decide_identity(guess, link_agency="链接局", link_year=2021) == ("某局", "metadata", 2021, "link")
    assert decide_identity(guess, agency="登记局", year=2019, link_year=2021) == ("登记局", "caller", 2019, "caller")
    firm = Document(kind="text", tables=[], text="", year=2020, year_source="period")
    assert decide_identity(firm, link_agency="链接局", link_year=2021) == ("链接局", "link", 2020, "period")
    assert decide_identity(firm) == (None, None, 2020, "period")


def test_transform_reads_no_page_itself():
    # extract reads a page once; transform makes rows of the Document and never decodes or parses markup.
    import ast
    from pathlib import Path

    forbidden = {"govreports.extract.decode", "govreports.extract.page", "govreports.extract.grid",
                 "govreports.extract.text_grid"}
    for path in (Path(__file__).resolve().parents[1] / "transform").glob("*.py"):
        imported = {n.module for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(n, ast.ImportFrom)}
        assert not imported & forbidden, path.name


def test_the_crawl_hands_on_its_report_pages_once_the_fetch_log_holds_them(demo_site_url, tmp_path):
    """What the flow parses while the crawl still runs: each log write's report pages, as parse refs."""
    from govreports.extract.fetch import Fetcher
    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.sources import load_sources
    from govreports.flows.config import DATA_DIR, Warehouse

    wh = Warehouse(str(tmp_path / "wh"))
    sources = load_sources(str(DATA_DIR / "sample_site" / "sources.csv"), site=demo_site_url)
    handed: list[list[steps.PageRef]] = []

    def on_pages(refs: list[steps.PageRef]) -> None:
        logged = set(zip(*FetchLog(wh.fetch_log).versions()[["url", "sha256"]].to_numpy().T, strict=True))
        assert {(r.url, r.sha256) for r in refs} <= logged  # written before it is handed on
        handed.append(refs)

    def crawl() -> list[steps.PageRef]:
        handed.clear()
        with Fetcher(allow_loopback=True, delay=0.0, timeout=5.0) as fetcher:
            result = steps.fetch(sources, wh, fetcher, on_pages=on_pages)
        refs = [r for batch in handed for r in batch]
        key = lambda r: (r.agency_id, r.url, r.sha256, r.year, r.declared_charset, r.link_agency)  # noqa: E731
        assert sorted(map(key, refs)) == sorted(map(key, steps.refs_from_crawl([result])))
        return refs

    first = crawl()
    assert first and all(r.fetched_at is not None for r in first)  # new: first fetched in this write
    assert first == steps.with_first_seen([dataclasses.replace(r, fetched_at=None) for r in first],
                                          FetchLog(wh.fetch_log))
    again = crawl()  # unchanged: when each was first fetched is the log's to say
    assert {r.fetched_at for r in again} == {None}
    assert sorted(steps.with_first_seen(again, FetchLog(wh.fetch_log)), key=lambda r: r.url) == \
        sorted(first, key=lambda r: r.url)


def test_files_in_the_log_are_parse_candidates_that_name_their_page(tmp_path):
    from govreports.extract.fetchlog import FetchLog

    page_url, file_url = "http://127.0.0.1/a/2022.html", "http://127.0.0.1/a/2022.pdf"
    records = [{"url": page_url, "agency_id": "a", "kind": "report", "outcome": "new", "sha256": "1" * 64},
               {"url": file_url, "agency_id": "a", "kind": "file", "outcome": "new", "sha256": "2" * 64,
                "linked_from": page_url, "year": 2022},
               {"url": "http://127.0.0.1/a/2022.xls", "agency_id": "a", "kind": "attachment", "outcome": "attachment"}]
    records = [r | {"fetched_at": pd.Timestamp("2025-01-06 08:00", tz="UTC")} for r in records]
    handed: list[steps.PageRef] = []
    steps._HandingOnLog(str(tmp_path / "log"), handed.extend).append(records)
    from_log = steps.refs_from_log(FetchLog(tmp_path / "log"))
    for refs in (handed, from_log):  # as the crawl writes them, and from the log alone (reparse)
        assert sorted((r.url, r.linked_from) for r in refs) == [(page_url, None), (file_url, page_url)]
    ref = next(r for r in from_log if r.url == file_url)
    report = steps.parse_page(b"%PDF-1.4 not a real file", ref, None, pd.Timestamp.now(tz="UTC")).report
    assert (report["status"], report["source_page"], report["url"]) == ("failed", page_url, file_url)


def test_the_log_is_read_a_few_whole_agencies_at_a_time(tmp_path):
    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(tmp_path / "log")
    agencies = ["c", "a", "b", "d"]  # written in no order; b has five versions, the others two
    for n, agency in enumerate(agencies):
        log.append([{"url": f"http://127.0.0.1/{agency}/{i}.html", "agency_id": agency, "kind": "report",
                     "outcome": "new", "sha256": f"{n * 10 + i:064x}"} for i in range(5 if agency == "b" else 2)])
    chunks = list(steps.ref_chunks_from_log(log, size=3))
    assert len(chunks) > 1
    # no agency is split between chunks, and every version comes once, agencies in order
    by_chunk = [sorted({r.agency_id for r in c}) for c in chunks]
    assert sorted(a for agencies in by_chunk for a in agencies) == ["a", "b", "c", "d"]
    assert all(len(c) <= 5 for c in chunks)  # about `size`: at most one agency's more
    refs = [r for c in chunks for r in c]
    assert sorted(r.sha256 for r in refs) == sorted(v for v in log.versions()["sha256"])
    assert [r.agency_id for r in refs] == sorted(r.agency_id for r in refs)

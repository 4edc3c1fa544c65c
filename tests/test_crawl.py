"""extract.crawl end to end against a tiny real site on 127.0.0.1: discovery, fetch, raw zone, fetch log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from govreports.extract.crawl import CrawlEvent, CrawlResult, crawl
from govreports.extract.fetch import Fetcher, FetchResult
from govreports.extract.fetchlog import FetchLog
from govreports.extract.rawzone import RawZone
from govreports.extract.sources import Source
from tests.httpserver import LocalServer, Reply, Request, serve

NAME = "鄞州区测试局"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    yield from serve("127.0.0.1")


@pytest.fixture
def foreign() -> Iterator[LocalServer]:
    yield from serve("127.0.0.2")


def source(srv: LocalServer, agency_id: str = "t1", listing: str = "/list/index.html") -> Source:
    return Source(
        agency_id=agency_id, name=NAME, province="浙江省", city="宁波市", county="鄞州区", township="",
        level="county", kind="department", listing_urls=(srv.url(listing),), report_urls=(), hosts=(srv.host,),
    )


def listing_html(prefix: str = "/r") -> str:
    return f"""<html><head><meta charset="utf-8"><title>政府信息公开年报</title></head><body><ul>
<li><a href="{prefix}/2021.html">{NAME}2021年政府信息公开工作年度报告</a></li>
<li><a href="{prefix}/2022.html">{NAME}2022年政府信息公开工作年度报告</a></li>
<li><a href="{prefix}/2023.xls">{NAME}2023年政府信息公开工作年度报告</a></li>
<li><a href="/n/notice.html">关于报送2023年政府信息公开工作年度报告的通知</a></li>
</ul></body></html>"""


def report_html(year: int, extra: str = "") -> bytes:
    return f"<html><title>{NAME}{year}年政府信息公开工作年度报告</title><body>{extra}</body></html>".encode()


def site(srv: LocalServer, *, etags: bool = True, prefix: str = "/r", listing: str = "/list/index.html") -> dict:
    """A listing linking two report pages, a spreadsheet and a notice. Report bodies live in the returned dict, so a
    test can change them between crawls; with `etags` the pages answer conditional requests with 304."""
    bodies = {f"{prefix}/2021.html": report_html(2021), f"{prefix}/2022.html": report_html(2022)}

    def page(req: Request) -> Reply:
        body = bodies[req.path]
        if not etags:
            return Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8"})
        tag = '"' + str(hash(body) & 0xFFFFFF) + '"'
        if req.headers.get("if-none-match") == tag:
            return Reply(304, b"", {"ETag": tag})
        return Reply(body=body, headers={"Content-Type": "text/html; charset=utf-8", "ETag": tag})

    srv.route(listing, Reply(body=listing_html(prefix), headers={"Content-Type": "text/html; charset=utf-8"}))
    for path in bodies:
        srv.route(path, page)
    srv.route(f"{prefix}/2023.xls", Reply(body=b"PK\x03\x04", headers={"Content-Type": "application/vnd.ms-excel"}))
    srv.route("/n/notice.html", Reply(body="<html>通知</html>"))
    return bodies


def fetcher(**kw: object) -> Fetcher:
    opts: dict[str, object] = {"timeout": 0.5, "retries": 1, "backoff": 0.01, "delay": 0.0, "allow_loopback": True}
    opts.update(kw)
    return Fetcher(**opts)  # type: ignore[arg-type]


def run(srcs: list[Source], tmp: Path, **kw: object) -> CrawlResult:
    with fetcher() as f:
        return crawl(srcs, RawZone(tmp / "raw"), FetchLog(tmp / "fetch_log"), f, **kw)  # type: ignore[arg-type]


def test_first_crawl_stores_reports_and_records_everything(server: LocalServer, tmp_path: Path) -> None:
    bodies = site(server)
    events: list[CrawlEvent] = []
    result = run([source(server)], tmp_path, on_event=events.append)
    s = result.agencies["t1"]
    assert (s.discovered, s.fetched, s.new_versions, s.unchanged, s.failed, s.not_readable) == (3, 2, 0, 0, 0, 1)
    assert s.errors == [] and not result.all_failed and result.changed == 2
    pages = sorted(result.pages, key=lambda p: p.url)
    assert [(p.year, p.status, p.declared_charset) for p in pages] == [(2021, "new", "utf-8"), (2022, "new", "utf-8")]
    assert pages[0].link_text == f"{NAME}2021年政府信息公开工作年度报告"
    assert [p.link_agency for p in pages] == [NAME, NAME]  # the agency the link text names
    raw = RawZone(tmp_path / "raw")
    assert raw.get(pages[0].sha256) == bodies["/r/2021.html"]
    log = FetchLog(tmp_path / "fetch_log").frame()
    assert sorted(zip(log["kind"], log["outcome"], strict=True)) == [
        ("attachment", "attachment"), ("listing", "new"), ("report", "new"), ("report", "new")
    ]
    assert set(log[log["kind"] == "report"]["link_agency"]) == {NAME}
    xls = log[log["kind"] == "attachment"].iloc[0]
    assert xls["url"].endswith("/r/2023.xls") and xls["year"] == 2023
    assert server.count("/r/2023.xls") == 0 and server.count("/n/notice.html") == 0  # recorded, not fetched
    assert len(list((tmp_path / "fetch_log").glob("*.parquet"))) == 1  # the crawl's records in one file
    assert events and all(e.agency_id == "t1" for e in events)
    assert (events[0].kind, events[-1].kind) == ("start", "done")
    pages = sorted((e.outcome, e.url.rsplit("/", 1)[-1]) for e in events if e.kind == "page")
    assert pages == [("attachment", "2023.xls"), ("new", "2021.html"), ("new", "2022.html")]


def test_an_image_only_report_is_recorded_not_fetched(server: LocalServer, tmp_path: Path) -> None:
    # Some agencies publish the report as a scan: a link to a picture, not readable here, yet not missing.
    server.route("/list/index.html", Reply(body=f"""<html><head><meta charset="utf-8"></head><body><ul>
<li><a href="/r/2021.html">{NAME}2021年政府信息公开工作年度报告</a></li>
<li><a href="/r/2022.jpg">{NAME}2022年政府信息公开工作年度报告</a></li></ul></body></html>""",
                                               headers={"Content-Type": "text/html; charset=utf-8"}))
    server.route("/r/2021.html", Reply(body=report_html(2021), headers={"Content-Type": "text/html"}))
    server.route("/r/2022.jpg", Reply(body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"}))
    s = run([source(server)], tmp_path).agencies["t1"]
    assert (s.discovered, s.fetched, s.not_readable, s.failed) == (2, 1, 1, 0)
    log = FetchLog(tmp_path / "fetch_log").frame()
    image = log[log["kind"] == "image"]
    assert list(image["outcome"]) == ["image_only"] and list(image["year"]) == [2022]
    assert server.count("/r/2022.jpg") == 0


def test_second_crawl_makes_only_conditional_requests(server: LocalServer, tmp_path: Path) -> None:
    site(server, etags=True)
    first = run([source(server)], tmp_path)
    stored = set(RawZone(tmp_path / "raw"))
    second = run([source(server)], tmp_path)
    assert first.changed == 2 and second.changed == 0
    assert sorted(p.status for p in second.pages) == ["unchanged", "unchanged"]
    assert {p.sha256 for p in second.pages} == {p.sha256 for p in first.pages}
    assert second.agencies["t1"].unchanged == 2
    assert set(RawZone(tmp_path / "raw")) == stored  # nothing new stored
    for path in ("/r/2021.html", "/r/2022.html"):
        first_req, second_req = server.requests_for(path)
        assert "if-none-match" not in first_req.headers and "if-none-match" in second_req.headers
    log = FetchLog(tmp_path / "fetch_log").frame()
    again = log[(log["kind"] == "report") & (log["outcome"] == "not_modified")]
    assert len(again) == 2 and again["sha256"].notna().all() and (again["status"] == 304).all()
    assert (again["declared_charset"] == "utf-8").all()  # carried over from the stored body


def test_a_listing_with_a_stale_validator_still_shows_a_new_report(server: LocalServer, tmp_path: Path) -> None:
    # The listing answers every conditional request with 304, even after a report was added to it.
    bodies = site(server)
    links = {"html": listing_html()}

    def listing_page(req: Request) -> Reply:
        if req.headers.get("if-none-match") or req.headers.get("if-modified-since"):
            return Reply(304, b"", {"ETag": '"l1"'})
        return Reply(body=links["html"], headers={"Content-Type": "text/html; charset=utf-8", "ETag": '"l1"',
                                                  "Last-Modified": "Mon, 06 Jan 2025 08:00:00 GMT"})

    server.route("/list/index.html", listing_page)
    run([source(server)], tmp_path)
    bodies["/r/2020.html"] = report_html(2020)
    server.route("/r/2020.html", Reply(body=bodies["/r/2020.html"], headers={"Content-Type": "text/html"}))
    new_link = f'<li><a href="/r/2020.html">{NAME}2020年政府信息公开工作年度报告</a></li>'
    links["html"] = links["html"].replace("<ul>", "<ul>\n" + new_link)
    second = run([source(server)], tmp_path)
    assert second.agencies["t1"].discovered == 4 and second.changed == 1
    assert [p.year for p in second.pages if p.status == "new"] == [2020]
    assert all("if-none-match" not in r.headers for r in server.requests_for("/list/index.html"))


def test_without_validators_sha256_says_unchanged(server: LocalServer, tmp_path: Path) -> None:
    site(server, etags=False)
    run([source(server)], tmp_path)
    stored = set(RawZone(tmp_path / "raw"))
    second = run([source(server)], tmp_path)
    assert second.changed == 0 and sorted(p.status for p in second.pages) == ["unchanged", "unchanged"]
    assert set(RawZone(tmp_path / "raw")) == stored
    log = FetchLog(tmp_path / "fetch_log").frame()
    assert sorted(log[log["kind"] == "report"]["outcome"]) == ["new", "new", "unchanged", "unchanged"]


def test_changed_page_becomes_a_new_version(server: LocalServer, tmp_path: Path) -> None:
    bodies = site(server)
    first = run([source(server)], tmp_path)
    old = bodies["/r/2021.html"]
    bodies["/r/2021.html"] = report_html(2021, extra="<p>更正：第二项数字有误</p>")
    second = run([source(server)], tmp_path)
    assert second.changed == 1 and second.agencies["t1"].new_versions == 1
    changed = next(p for p in second.pages if p.url.endswith("2021.html"))
    assert changed.status == "new_version"
    raw = RawZone(tmp_path / "raw")
    old_sha = next(p.sha256 for p in first.pages if p.url.endswith("2021.html"))
    assert raw.get(old_sha) == old and raw.get(changed.sha256) == bodies["/r/2021.html"]
    v = FetchLog(tmp_path / "fetch_log").versions()
    v = v[v["url"] == server.url("/r/2021.html")].set_index("sha256")
    assert len(v) == 2 and bool(v.loc[changed.sha256, "is_current"]) and not bool(v.loc[old_sha, "is_current"])
    # A third run sees the new version as current and unchanged.
    third = run([source(server)], tmp_path)
    assert third.changed == 0


@pytest.mark.parametrize("empty", [b"", b" \r\n\t \n"])
def test_an_empty_body_is_a_failed_attempt_never_a_version(server: LocalServer, tmp_path: Path, empty: bytes) -> None:
    bodies = site(server, etags=False)
    first = run([source(server)], tmp_path)
    good = next(p.sha256 for p in first.pages if p.url.endswith("2021.html"))
    bodies["/r/2021.html"] = empty
    second = run([source(server)], tmp_path)
    s = second.agencies["t1"]
    assert (s.failed, s.new_versions, second.changed) == (1, 0, 0)
    assert any("2021.html" in e and "empty body" in e for e in s.errors)
    url = server.url("/r/2021.html")
    log = FetchLog(tmp_path / "fetch_log")
    row = log.frame().query("url == @url").sort_values("fetched_at").iloc[-1]
    assert (row["outcome"], row["error"]) == ("failed", "empty body") and pd.isna(row["sha256"])
    assert log.last_success(url)["sha256"] == good  # the good version stays the latest success
    v = log.versions().query("url == @url")
    assert list(v["sha256"]) == [good] and bool(v["is_current"].iloc[0])
    bodies["/r/2021.html"] = report_html(2021)  # the page comes back: the same version, unchanged
    third = run([source(server)], tmp_path)
    assert [p.status for p in third.pages if p.url == url] == ["unchanged"]


def test_report_links_per_agency_are_capped_newest_first(server: LocalServer, tmp_path: Path) -> None:
    # A listing of 30 report links (2001-2030, in no order) and a spreadsheet; the registry names one report URL.
    years = [2001 + (7 * i) % 30 for i in range(30)]
    links = "".join(f'<li><a href="/r/{y}.html">{NAME}{y}年政府信息公开工作年度报告</a></li>' for y in years)
    server.route("/list/index.html", Reply(body=f'<html><head><meta charset="utf-8"></head><body><ul>{links}'
                                                f'<li><a href="/r/x.xls">{NAME}2031年政府信息公开工作年度报告</a></li>'
                                                '</ul></body></html>'))
    for y in [*years, "direct"]:
        server.route(f"/r/{y}.html", Reply(body=report_html(2000), headers={"Content-Type": "text/html"}))
    src = replace(source(server), report_urls=(server.url("/r/direct.html"),))
    events: list[CrawlEvent] = []
    with fetcher(max_reports=4) as f:
        result = crawl([src], RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f, on_event=events.append)
    s = result.agencies["t1"]
    assert (s.discovered, s.fetched, s.not_readable, s.capped) == (32, 4, 1, 27)
    fetched = sorted(r.path for r in server.requests if r.path.startswith("/r/"))
    assert fetched == ["/r/2028.html", "/r/2029.html", "/r/2030.html", "/r/direct.html"]
    assert "capped at 4 of 31 report links" in "; ".join(s.errors)
    assert any(e.kind == "error" and "capped at 4 of 31" in (e.detail or "") for e in events)
    assert not s.failed_entirely


def test_the_report_cap_defaults_to_500() -> None:
    assert Fetcher().max_reports == 500


def test_persistent_503_is_recorded_and_others_continue(server: LocalServer, tmp_path: Path) -> None:
    site(server)
    server.route("/r/2022.html", Reply(503, b"busy"))
    result = run([source(server)], tmp_path)
    s = result.agencies["t1"]
    assert s.fetched == 1 and s.failed == 1 and not s.failed_entirely and not result.all_failed
    assert any("2022.html" in e and "503" in e for e in s.errors)
    assert server.count("/r/2022.html") == 2  # retries=1
    log = FetchLog(tmp_path / "fetch_log").frame()
    row = log[log["url"] == server.url("/r/2022.html")].iloc[0]
    assert row["outcome"] == "failed" and row["status"] == 503 and "HTTP 503" in row["error"] and row["year"] == 2022


def test_one_failing_agency_does_not_stop_the_others(server: LocalServer, tmp_path: Path) -> None:
    site(server)
    server.route("/down/index.html", Reply(503, b"busy"))
    result = run([source(server, "t1"), source(server, "down", "/down/index.html")], tmp_path, workers=2)
    assert result.agencies["t1"].fetched == 2
    down = result.agencies["down"]
    assert down.failed_entirely and down.discovered == 0 and "503" in down.errors[0]
    assert not result.all_failed
    log = FetchLog(tmp_path / "fetch_log").frame()
    listing = log[(log["agency_id"] == "down") & (log["kind"] == "listing")].iloc[0]
    assert listing["outcome"] == "failed" and listing["status"] == 503


def test_all_agencies_failing(server: LocalServer, tmp_path: Path) -> None:
    result = run([source(server, "a", "/gone1"), source(server, "b", "/gone2")], tmp_path)
    assert result.all_failed and result.changed == 0
    assert all(s.errors and "404" in s.errors[0] for s in result.agencies.values())


def test_exception_inside_an_agency_is_caught(server: LocalServer, tmp_path: Path) -> None:
    site(server)

    class Exploding(Fetcher):
        def get(self, url: str, **kw: object) -> FetchResult:
            if "/boom/" in url:
                raise RuntimeError("kaboom")
            return super().get(url, **kw)  # type: ignore[arg-type]

    with Exploding(timeout=0.5, retries=0, delay=0.0, allow_loopback=True) as f:
        result = crawl([source(server, "t1"), source(server, "boom", "/boom/index.html")],
                       RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f)
    assert result.agencies["t1"].fetched == 2
    boom = result.agencies["boom"]
    assert boom.failed_entirely and "RuntimeError: kaboom" in boom.errors[0]
    log = FetchLog(tmp_path / "fetch_log").frame()
    rec = log[log["agency_id"] == "boom"].iloc[0]
    assert rec["kind"] == "agency" and rec["outcome"] == "failed" and "kaboom" in rec["error"]


def test_charset_header_is_handed_on(server: LocalServer, tmp_path: Path) -> None:
    # A GBK listing without any charset declaration, a GBK report labelled ISO-8859-1, one with none.
    gbk_listing = listing_html().replace('<meta charset="utf-8">', "").encode("gbk")
    server.route("/list/index.html", Reply(body=gbk_listing, headers={"Content-Type": "text/html"}))
    wrong = report_html(2021).decode().encode("gbk")
    server.route("/r/2021.html", Reply(body=wrong, headers={"Content-Type": "text/html; charset=ISO-8859-1"}))
    server.route("/r/2022.html", Reply(body=report_html(2022).decode().encode("gbk"),
                                       headers={"Content-Type": "text/html"}))
    result = run([source(server)], tmp_path, years=[2021, 2022])
    by_year = {p.year: p for p in result.pages}
    assert set(by_year) == {2021, 2022}  # the GBK listing was decoded and read
    assert by_year[2021].declared_charset == "iso-8859-1" and by_year[2022].declared_charset is None
    assert RawZone(tmp_path / "raw").get(by_year[2021].sha256) == wrong  # bytes as sent, not re-encoded


def test_years_filter(server: LocalServer, tmp_path: Path) -> None:
    site(server)
    result = run([source(server)], tmp_path, years=[2021])
    assert [p.year for p in result.pages] == [2021]
    assert result.agencies["t1"].discovered == 1 and server.count("/r/2022.html") == 0


def test_refused_reports_are_recorded(server: LocalServer, foreign: LocalServer, tmp_path: Path) -> None:
    site(server)
    server.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /r/2022.html\n"))
    server.route("/r/2021.html", Reply(302, b"", {"Location": foreign.url("/r/2021.html")}))
    result = run([source(server)], tmp_path)
    s = result.agencies["t1"]
    assert s.failed == 2 and s.fetched == 0 and result.pages == []
    assert foreign.count() == 0 and server.count("/r/2022.html") == 0
    log = FetchLog(tmp_path / "fetch_log").frame()
    reports = log[log["kind"] == "report"].set_index("url")
    assert reports.loc[server.url("/r/2022.html"), "error"] == "disallowed by robots.txt"
    assert reports.loc[server.url("/r/2021.html"), "outcome"] == "refused"
    assert "127.0.0.2" in reports.loc[server.url("/r/2021.html"), "error"]


def test_lost_raw_body_means_an_unconditional_refetch(server: LocalServer, tmp_path: Path) -> None:
    site(server)
    first = run([source(server)], tmp_path)
    raw = RawZone(tmp_path / "raw")
    lost = first.pages[0]
    raw.path(lost.sha256).unlink()
    second = run([source(server)], tmp_path)
    again = next(p for p in second.pages if p.url == lost.url)
    assert again.status == "unchanged" and raw.get(lost.sha256)  # stored again
    assert "if-none-match" not in server.requests_for(urlpath(lost.url))[-1].headers


def urlpath(url: str) -> str:
    return urlsplit(url).path


def test_many_agencies_on_one_host_share_the_politeness(server: LocalServer, tmp_path: Path) -> None:
    for i in range(4):
        site(server, prefix=f"/a{i}", listing=f"/l{i}/index.html")
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    original = dict(server.routes)

    def counting(path: str) -> Callable[[Request], Reply]:
        inner = original[path]

        def handler(req: Request) -> Reply:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.02)  # long enough for requests to overlap if the limit did not hold
            try:
                return inner(req) if callable(inner) else inner  # type: ignore[operator,return-value]
            finally:
                with lock:
                    state["now"] -= 1

        return handler

    for path in original:
        server.route(path, counting(path))
    srcs = [source(server, f"ag{i}", f"/l{i}/index.html") for i in range(4)]
    with fetcher(per_host_concurrency=1) as f:
        result = crawl(srcs, RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f, workers=4)
    assert result.changed == 8 and state["max"] == 1
    # The four agencies' records are written together: one log file, every agency in it.
    assert len(list((tmp_path / "fetch_log").glob("*.parquet"))) == 1
    assert set(FetchLog(tmp_path / "fetch_log").frame()["agency_id"]) == {f"ag{i}" for i in range(4)}


def test_a_host_has_as_many_agencies_in_progress_as_request_slots(server: LocalServer, foreign: LocalServer,
                                                                   tmp_path: Path) -> None:
    # Threads beyond a host's slots would only wait between its pages: each host gets `per_host_concurrency`
    # lanes, while another host's agencies go ahead on their own lanes.
    srcs = _two_hosts(server, foreign, 3)
    lock = threading.Lock()
    active: dict[str, int] = {"127.0.0.1": 0, "127.0.0.2": 0, "all": 0}
    most = dict(active)

    def event(e: CrawlEvent) -> None:
        step = {"start": 1, "done": -1}.get(e.kind, 0)
        host = "127.0.0.2" if e.agency_id.startswith("far") else "127.0.0.1"
        with lock:
            for key in (host, "all"):
                active[key] += step
                most[key] = max(most[key], active[key])

    with fetcher(per_host_concurrency=1) as f:
        result = crawl(srcs, RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f, workers=6,
                       on_event=event)
    assert result.changed == 12
    assert most == {"127.0.0.1": 1, "127.0.0.2": 1, "all": 2}


def test_every_host_is_worked_from_the_start_whatever_the_registry_order(server: LocalServer, foreign: LocalServer,
                                                                         tmp_path: Path) -> None:
    # A registry lists a host's agencies side by side. Taken in that order, the threads would all queue
    # for the first host's lanes while the second host waits: its politeness delay would then run after
    # the first host's, not beside it. Dealt out by host, both hosts start at once, on as many threads
    # as they have request slots.
    srcs = _two_hosts(server, foreign, 5)
    starts: list[str] = []
    with fetcher(per_host_concurrency=1) as f:
        result = crawl(srcs, RawZone(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f,
                       on_event=lambda e: starts.append(e.agency_id) if e.kind == "start" else None)
    assert result.changed == 20
    assert {a[:2] for a in starts[:2]} == {"ag", "fa"}, starts


def _two_hosts(server: LocalServer, foreign: LocalServer, per_host: int) -> list[Source]:
    """`per_host` agencies on each of two hosts (ag0… on 127.0.0.1, then far0… on 127.0.0.2), registry
    order grouped by host, each report slowed so that agencies overlap."""
    for srv in (server, foreign):
        for i in range(per_host):
            site(srv, prefix=f"/a{i}", listing=f"/l{i}/index.html")
            srv.route(f"/a{i}/2021.html", _slowed(srv.routes[f"/a{i}/2021.html"]))
    return [source(srv, f"{name}{i}", f"/l{i}/index.html")
            for srv, name in ((server, "ag"), (foreign, "far")) for i in range(per_host)]


def _slowed(inner: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    def handler(req: Request) -> Reply:
        time.sleep(0.05)  # long enough for agencies to overlap if nothing kept them apart
        return inner(req)

    return handler


def test_log_records_are_written_every_few_agencies_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    from govreports.extract.crawl import AgencySummary, _LogWriter

    log = FetchLog(tmp_path / "fetch_log")
    writer = _LogWriter(log, every=2, max_age=3600)

    def recs(agency: str, outcome: str = "failed") -> list[dict]:
        return [{"url": f"http://127.0.0.1/{agency}", "agency_id": agency, "kind": "report", "outcome": outcome}]

    summaries = [AgencySummary(f"a{i}") for i in range(5)]
    writer.add(summaries[0], recs("a0"))
    assert not list((tmp_path / "fetch_log").glob("*.parquet"))  # waiting for a second agency
    writer.add(summaries[1], recs("a1"))
    assert len(list((tmp_path / "fetch_log").glob("*.parquet"))) == 1
    writer.add(summaries[2], recs("a2", outcome="exploded"))  # a record the log refuses
    writer.add(summaries[3], recs("a3"))
    writer.add(summaries[4], recs("a4"))
    writer.flush()
    assert set(log.frame()["agency_id"]) == {"a0", "a1", "a3", "a4"}
    assert [bool(s.errors) for s in summaries] == [False, False, True, False, False]
    assert "fetch log not written" in summaries[2].errors[0]


def test_exception_on_one_page_fails_that_page_only(server: LocalServer, tmp_path: Path) -> None:
    site(server)

    class FullDisk(RawZone):
        def put(self, body: bytes) -> tuple[str, bool]:
            if b"2022" in body:
                raise OSError(28, "No space left on device")
            return super().put(body)

    with fetcher() as f:
        result = crawl([source(server)], FullDisk(tmp_path / "raw"), FetchLog(tmp_path / "fetch_log"), f)
    s = result.agencies["t1"]
    # The listing (it names 2022 too) could not be kept either, but its links were still followed.
    assert (s.discovered, s.fetched, s.failed, s.not_readable) == (3, 1, 1, 1)
    assert len(s.errors) == 2 and all("No space left" in e for e in s.errors)
    assert [p.year for p in result.pages] == [2021]
    log = FetchLog(tmp_path / "fetch_log").frame()
    row = log[log["url"] == server.url("/r/2022.html")].iloc[0]
    assert row["outcome"] == "failed" and "No space left" in row["error"]


def test_fetch_takes_max_reports(demo_site_url: str, tmp_path: Path) -> None:
    # `govreports fetch --max-reports 2` (run, backfill, serve and demo take it too, as the flow's parameter):
    # the agency's 6 report pages capped to its newest 2, and the summary says so.
    import subprocess

    from govreports.flows.config import DATA_DIR
    from tests import CLI

    out = subprocess.run([*CLI, "--warehouse", str(tmp_path), "fetch", "--sources",
                          str(DATA_DIR / "sample_site" / "sources.csv"), "--site", demo_site_url, "--allow-loopback",
                          "--delay", "0", "--quiet", "--agency", "330212-jtj", "--max-reports", "2"],
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "2 changed" in text and "capped at 2 of 6 report links" in text
    years = FetchLog(tmp_path / "fetch_log").frame().query("kind == 'report'")["year"]
    assert sorted(years) == [2023, 2024]  # of 2019-2024

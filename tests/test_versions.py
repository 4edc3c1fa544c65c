"""A bad night never costs data (issue #14): real nightly runs against a copy of the demo site on
127.0.0.1 whose report page is switched between runs. Whatever one night served (an empty page, a
changed page, garbage), once the page is restored the warehouse's `facts` and `reports` equal those of
a fresh warehouse built by one run over the same pages."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from govreports.flows.config import DATA_DIR, Warehouse
from govreports.flows.demo_site import serve
from govreports.load.warehouse import connect

AGENCY = "330212-jtj"
PAGE = "330212-jtj/ndbg/202201/t20220117_3188205.html"  # its 2021 report: 14120 licensing decisions
YEAR = 2021
GOOD = (DATA_DIR / "sample_site" / PAGE).read_bytes()
CHANGED = GOOD.replace(b">14120<", b">14121<")  # version B: one number differs
GARBAGE = b"<html><head><title>\xe7\xbb\xb4\xe6\x8a\xa4</title></head><body><p>" + b"x" * 500 + b"</p></body></html>"
UNSTABLE = ("fetched_at", "loaded_at")  # when a version was first fetched and loaded: the history's, not the page's


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from govreports.flows import pipeline

    return pipeline


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A copy of the demo site, served for the module: the tests switch one page of it."""
    root = tmp_path_factory.mktemp("site") / "site"
    shutil.copytree(DATA_DIR / "sample_site", root)
    server, url = serve(root)
    yield root, url
    server.shutdown()
    server.server_close()


_clock = [time.time()]


def serve_page(site, body: bytes) -> None:
    """The page now holds `body`, with a Last-Modified later than any before (its mtime, in whole seconds,
    is what the server's If-Modified-Since compares)."""
    root, _ = site
    path = root / PAGE
    path.write_bytes(body)
    _clock[0] += 10
    os.utime(path, (_clock[0], _clock[0]))


def nightly(pipeline, site, warehouse: Path) -> dict:
    root, url = site
    return pipeline.nightly(sources_file=str(root / "sources.csv"), warehouse=str(warehouse), site=url,
                            agencies=[AGENCY], allow_loopback=True, delay=0.0, timeout=5.0)


def tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    with connect(Warehouse(str(warehouse)).db) as con:
        out = {name: con.execute(f"SELECT * FROM {name}").df().drop(columns=list(UNSTABLE), errors="ignore")
               for name in ("facts", "reports")}
    return {name: df.sort_values(list(df.columns)).reset_index(drop=True).astype(str) for name, df in out.items()}


def licensing(warehouse: Path) -> list:
    with connect(Warehouse(str(warehouse)).db) as con:
        return [v for (v,) in con.execute("SELECT value FROM facts WHERE agency_id = ? AND year = ? AND "
                                          "metric = 'licensing_decisions'", [AGENCY, YEAR]).fetchall()]


def quality(warehouse: Path) -> list[tuple]:
    with connect(Warehouse(str(warehouse)).db) as con:
        return con.execute("SELECT status, is_current FROM data_quality WHERE agency_id = ? AND year = ? "
                           "ORDER BY status DESC, is_current DESC", [AGENCY, YEAR]).fetchall()


@pytest.fixture(scope="module")
def fresh(pipeline, site, tmp_path_factory):
    """A fresh warehouse, one run over the pages as each test leaves them (the originals)."""
    serve_page(site, GOOD)
    warehouse = tmp_path_factory.mktemp("fresh")
    nightly(pipeline, site, warehouse)
    return tables(warehouse)


def assert_as_fresh(site, warehouse: Path, fresh: dict[str, pd.DataFrame]) -> None:
    assert (site[0] / PAGE).read_bytes() == GOOD  # the fresh warehouse was built over these pages
    got = tables(warehouse)
    for name in ("facts", "reports"):
        pd.testing.assert_frame_equal(got[name], fresh[name])


@pytest.mark.parametrize("bad", [b"", GARBAGE], ids=["empty", "garbage"])
def test_a_bad_night_then_the_page_restored(pipeline, site, fresh, tmp_path, bad):
    wh = tmp_path / "wh"
    serve_page(site, GOOD)
    nightly(pipeline, site, wh)
    assert licensing(wh) == [14120]
    serve_page(site, bad)
    nightly(pipeline, site, wh)
    # The good version stays current through the bad night, its numbers in facts.
    assert licensing(wh) == [14120]
    # Garbage is a version that failed beside the good one; an empty body is no version at all, only a
    # failed attempt in the fetch log.
    assert quality(wh) == ([("parsed", True), ("failed", False)] if bad else [("parsed", True)])
    serve_page(site, GOOD)
    nightly(pipeline, site, wh)
    assert licensing(wh) == [14120]
    assert_as_fresh(site, wh, fresh)


def test_a_to_b_to_a_makes_a_current_again_and_reparse_agrees(pipeline, site, fresh, tmp_path):
    wh = tmp_path / "wh"
    serve_page(site, GOOD)
    nightly(pipeline, site, wh)
    serve_page(site, CHANGED)
    nightly(pipeline, site, wh)
    assert licensing(wh) == [14121]
    serve_page(site, GOOD)
    third = nightly(pipeline, site, wh)
    assert third["parsed"] == 0  # A's bytes were parsed on the first night: seen again, not parsed again
    assert licensing(wh) == [14120]
    assert quality(wh) == [("parsed", True), ("parsed", False)]
    assert_as_fresh(site, wh, fresh)
    with connect(Warehouse(str(wh)).db) as con:
        current = con.execute("SELECT report_id, is_current FROM reports_all_versions ORDER BY 1").fetchall()
    pipeline.reparse(warehouse=str(wh), sources_file=str(site[0] / "sources.csv"), site=site[1])
    with connect(Warehouse(str(wh)).db) as con:
        assert con.execute("SELECT report_id, is_current FROM reports_all_versions ORDER BY 1").fetchall() == current
    assert_as_fresh(site, wh, fresh)


def test_a_night_that_loads_one_report_reads_no_other_lake_file(pipeline, site, tmp_path):
    """Issue 17: the refresh costs what changed. After a first run over every agency, every data file of the
    lake is overwritten with garbage; the next night one report changed: the run loads it and refreshes the
    database from the new files alone (reading any other file would fail, or list it in lake_tampered)."""
    root, url = site
    serve_page(site, GOOD)
    wh = tmp_path / "wh"
    run = dict(sources_file=str(root / "sources.csv"), warehouse=str(wh), site=url, allow_loopback=True, delay=0.0,
               timeout=5.0)
    first = pipeline.nightly(**run)
    assert first["parsed"] > 10
    before = tables(wh)
    others = [p for p in (wh / "parquet").rglob("part-*.parquet")]
    for p in others:
        p.write_bytes(b"garbage, not Parquet")
    serve_page(site, CHANGED)
    try:
        second = pipeline.nightly(**run)
    finally:
        serve_page(site, GOOD)
    assert second["parsed"] == 1 and not second["failures"]
    assert licensing(wh) == [14121.0]
    after = tables(wh)
    theirs = {name: df[df["agency_id"] != AGENCY].reset_index(drop=True) for name, df in after.items()}
    assert all(theirs[n].equals(before[n][before[n]["agency_id"] != AGENCY].reset_index(drop=True)) for n in theirs)
    with connect(Warehouse(str(wh)).db) as con:
        assert con.execute("SELECT count(*) FROM lake_tampered").fetchone() == (0,)

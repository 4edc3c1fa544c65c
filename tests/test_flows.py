"""The Prefect flows end to end on the bundled demo site, served on 127.0.0.1 (real HTTP, real files,
real Prefect runs on the test harness)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from govreports.extract import convert
from govreports.extract.sources import Source, load_sources
from govreports.flows.config import DATA_DIR, Warehouse
from govreports.flows.runlock import RunLock
from govreports.load.lake import Lake
from govreports.load.warehouse import connect

SITE = DATA_DIR / "sample_site"
MANIFEST = json.loads((SITE / "manifest.json").read_text(encoding="utf-8"))
# The demo's report pages, its reports published only as a file (a PDF, a DOCX, a scan) and its page that
# prints no table but links its .doc: fetched and read like the pages, each document a report row of its own.
PAGES = [r for r in MANIFEST["reports"] if r["kind"] == "report"]
FILES = [r for r in MANIFEST["reports"] if r["kind"] == "attachment"]
LINKED = [r for r in MANIFEST["reports"] if r["kind"] == "page_with_file"]
DOCUMENTS = len(PAGES) + len(FILES) + 2 * len(LINKED)
# The documents that fail to parse: the scan (no text layer) and the page that only links its .doc.
FAILING = {**{r["path"]: "no text layer (scanned)" for r in FILES if not r["values"]},
           **{r["path"]: "no report tables found" for r in LINKED}}
# Without LibreOffice (a system package; CI installs it) the linked .doc is refused, not read: its report
# has no values and the .doc joins the failures.
CONVERTER = convert.converter() is not None
if not CONVERTER:
    FAILING.update({r["file"]: "needs converter" for r in LINKED})


@pytest.fixture(scope="module")
def site(demo_site_url):
    return demo_site_url


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from govreports.flows import pipeline

    return pipeline


def run(pipeline, flow, **kwargs):
    return pipeline.RunSummary(**getattr(pipeline, flow)(**kwargs))


def common(url, warehouse, sources=None):
    return {"sources_file": str(sources or SITE / "sources.csv"), "warehouse": str(warehouse), "site": url,
            "allow_loopback": True, "delay": 0.0, "timeout": 5.0}


def only_the_files_failed(failures: list[str]) -> bool:
    """The run's failures are the demo's scan and its page without tables, one each."""
    return sorted(failures) == sorted(f for f in failures for path, why in FAILING.items() if f"{path}: {why}" in f) \
        and len(failures) == len(FAILING)


def frame_values(facts: pd.DataFrame) -> dict[tuple[str, int], dict[str, list]]:
    out: dict[tuple[str, int], dict[str, list]] = {}
    for row in facts[facts["metric"].notna()].itertuples(index=False):
        key = f"{row.metric}|{'' if pd.isna(row.applicant) else row.applicant}"
        value = None if row.value is None or (isinstance(row.value, float) and math.isnan(row.value)) else row.value
        out.setdefault((row.agency_id, int(row.year)), {})[key] = [row.value_status, value]
    return out


def snapshot(wh: Warehouse) -> dict[str, pd.DataFrame]:
    lake = Lake(wh.lake)
    out = {}
    for name in ("facts", "reports", "checks"):
        df = lake.read(name).drop(columns=["loaded_at"], errors="ignore")
        out[name] = df.sort_values(list(df.columns)[:6]).reset_index(drop=True).astype(str)
    return out


@pytest.fixture(scope="module")
def nightly_run(pipeline, site, tmp_path_factory):
    wh = Warehouse(str(tmp_path_factory.mktemp("nightly")))
    first = run(pipeline, "nightly", **common(site, wh.root))
    return wh, first, snapshot(wh)


def test_nightly_loads_exactly_what_the_site_holds(site, nightly_run):
    wh, summary, _ = nightly_run
    reports = [r for r in MANIFEST["reports"] if r["values"] and (CONVERTER or r not in LINKED)]  # pages and files
    assert summary.parsed == DOCUMENTS
    with connect(wh.db) as con:
        facts = con.execute("SELECT agency_id, year, metric, applicant, value, value_status FROM facts").df()
    loaded = frame_values(facts)
    for r in reports:
        assert loaded[(r["agency_id"], r["year"])] == r["values"], r["path"]
    # The reports published only as a file are fetched and read; the scan is a failed report row (visible in
    # data_quality), not silently missing; the page that only links its .doc gives way to the parsed .doc.
    assert summary.not_readable == 0
    with connect(wh.db) as con:
        files = con.execute("SELECT url, outcome, linked_from FROM fetch_log WHERE kind = 'file'").fetchall()
        failed = con.execute("SELECT url, failure FROM reports WHERE status = 'failed'").fetchall()
    assert sorted(files) == sorted([(site + r["path"], "new", None) for r in FILES]
                                   + [(site + r["file"], "new", site + r["path"]) for r in LINKED])
    assert sorted((u, f.split(":")[0]) for u, f in failed) == sorted(
        [(site + r["path"], FAILING[r["path"]]) for r in FILES if not r["values"]]
        + [(site + r["file"], "needs converter") for r in LINKED if not CONVERTER])


def test_the_run_summary_is_a_markdown_artifact(pipeline, nightly_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, summary, _ = nightly_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["govreports-nightly"])))
    tables = [a.data for a in artifacts if a.type == "markdown"]
    want = [f"| reports discovered | {summary.discovered} |", f"| parsed | {summary.parsed} |",
            f"| values | {summary.values} |", f"| failed checks | {summary.failed_checks} |"]
    assert any(all(line in t for line in want) for t in tables), tables[-1:]


def test_request_outcomes_keep_each_category_and_add_up_to_requests(nightly_run):
    wh, _, _ = nightly_run
    with connect(wh.db) as con:
        categories = con.execute(
            "SELECT count(DISTINCT category) FROM request_outcomes WHERE outcome = 'withheld'").fetchone()[0]
        # Where a report prints a group's categories, `requests` is their sum.
        mismatches = con.execute("""
            SELECT o.report_id, o.applicant, o.outcome, o.total, r.withheld, r.unavailable, r.not_processed
            FROM (SELECT report_id, applicant, outcome, sum(value) AS total FROM request_outcomes
                  WHERE category IS NOT NULL GROUP BY ALL) o
            JOIN requests r USING (report_id, applicant)
            WHERE o.total IS DISTINCT FROM CASE o.outcome WHEN 'withheld' THEN r.withheld
                WHEN 'unavailable' THEN r.unavailable WHEN 'not_processed' THEN r.not_processed
                WHEN 'other' THEN r.other_handling END""").fetchall()
        groups = {g for (g,) in con.execute("SELECT DISTINCT outcome FROM request_outcomes").fetchall()}
    assert categories == 8  # 不予公开: the eight reasons of both templates
    assert mismatches == []
    assert groups == {"disclosed", "partial", "withheld", "unavailable", "not_processed", "other", "total"}


def test_a_second_nightly_run_changes_nothing(pipeline, site, nightly_run):
    wh, _, before = nightly_run
    again = run(pipeline, "nightly", **common(site, wh.root))
    assert again.changed == 0 and again.parsed == 0
    assert again.unchanged >= DOCUMENTS
    after = snapshot(wh)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


def test_reparse_equals_a_fresh_run(pipeline, nightly_run):
    wh, _, before = nightly_run
    summary = run(pipeline, "reparse", warehouse=wh.root, sources_file=None, site=None)
    assert summary.parsed == len(before["reports"])
    after = snapshot(wh)
    # Names and regions come from the registry in a fetch run; reparse without it reads them off the pages.
    for name in ("facts", "checks"):
        pd.testing.assert_frame_equal(before[name].drop(columns=["agency"], errors="ignore"),
                                      after[name].drop(columns=["agency"], errors="ignore"))


def test_reparse_with_the_registry_equals_a_fresh_run_exactly(pipeline, site, nightly_run):
    wh, _, before = nightly_run
    run(pipeline, "reparse", warehouse=wh.root, sources_file=str(SITE / "sources.csv"), site=site)
    after = snapshot(wh)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


def test_reparse_in_worker_processes_equals_a_fresh_run_exactly(pipeline, site, nightly_run, monkeypatch):
    from govreports.flows import steps

    wh, _, before = nightly_run
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "2")
    monkeypatch.setattr(pipeline, "PARSE_BATCH", 5)  # several batches, so both processes take some

    def not_here(*_args, **_kwargs):
        raise AssertionError("parsed in the flow's process, not in a worker")

    monkeypatch.setattr(steps, "parse_and_load", not_here)  # the processes' copy of steps is unpatched
    summary = run(pipeline, "reparse", warehouse=wh.root, sources_file=str(SITE / "sources.csv"), site=site)
    assert summary.parsed == len(before["reports"]) and only_the_files_failed(summary.failures)
    after = snapshot(wh)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


def test_parse_processes_recycled_midway_lose_nothing(pipeline, site, nightly_run, monkeypatch):
    wh, _, before = nightly_run
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "2")
    monkeypatch.setattr(pipeline, "PARSE_BATCH", 5)
    monkeypatch.setattr(pipeline, "RECYCLE_PAGES", 5)  # a new pool after every 10 pages submitted
    pools = []
    opened = pipeline._ParseStage._open_pool

    def counted(stage):
        opened(stage)
        pools.append(stage.runner)

    monkeypatch.setattr(pipeline._ParseStage, "_open_pool", counted)
    summary = run(pipeline, "reparse", warehouse=wh.root, sources_file=str(SITE / "sources.csv"), site=site)
    assert len(pools) >= 3 and len(set(map(id, pools))) == len(pools)
    assert summary.parsed == len(before["reports"]) and only_the_files_failed(summary.failures)
    after = snapshot(wh)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])


class DiesInAParseProcess(Source):
    """A registry entry like any other in the flow's process; unpickled in a parse process, it ends that
    process at once, as the OOM killer would."""

    def __reduce__(self):
        return os._exit, (1,)


def test_a_parse_process_that_dies_leaves_its_batches_to_the_flow(pipeline, site, nightly_run, monkeypatch):
    wh, _, before = nightly_run
    registry = load_sources(str(SITE / "sources.csv"), site=site)
    doomed = DiesInAParseProcess(**{f.name: getattr(registry[-1], f.name) for f in dataclasses.fields(Source)})
    monkeypatch.setattr(pipeline, "load_sources", lambda *_a, **_k: [*registry[:-1], doomed])
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "2")
    monkeypatch.setattr(pipeline, "PARSE_BATCH", 5)
    summary = run(pipeline, "reparse", warehouse=wh.root, sources_file=str(SITE / "sources.csv"), site=site)
    assert summary.parsed == len(before["reports"]) and only_the_files_failed(summary.failures)
    after = snapshot(wh)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])
    with RunLock(wh.lock_dir) as lock:
        assert lock.needs_sweep  # what the dead process was writing is swept by the next run


def test_backfill_of_a_subset(pipeline, site, tmp_path):
    # Flow parameters are plain strings (a deployment validates them by their annotations); the CLI
    # hands its paths over as strings.
    options = common(site, tmp_path) | {"sources_file": str(SITE / "sources.csv"), "warehouse": str(tmp_path)}
    summary = run(pipeline, "backfill", years=[2021, 2022], agencies=["330203-jtj"], **options)
    assert summary.agencies == 1
    reports = Lake(str(Path(tmp_path) / "parquet")).read("reports")
    assert set(reports["agency_id"]) == {"330203-jtj"}
    assert set(reports["year"]) == {2021, 2022}



def test_a_capped_agency_is_counted_in_the_run_summary(pipeline, site, tmp_path):
    summary = run(pipeline, "backfill", years=[2021, 2022], agencies=["330203-jtj"], max_reports=1,
                  **common(site, tmp_path))
    assert (summary.capped, summary.discovered) == (1, 2)
    assert ("capped (--max-reports)", 1) in summary.rows()
    assert any("capped at 1 of 2 report links" in f for f in summary.failures)
    assert set(Lake(str(Path(tmp_path) / "parquet")).read("reports")["year"]) == {2022}  # the newest kept

def test_one_failing_agency_does_not_stop_the_others(pipeline, site, tmp_path):
    registry = (SITE / "sources.csv").read_text(encoding="utf-8")
    broken = tmp_path / "sources.csv"
    # An agency whose site is down: nothing listens on port 9 of 127.0.0.1.
    broken.write_text(registry.rstrip("\n") + "\n330299-dead,停机区交通运输局,浙江省,宁波市,停机区,,county,department,"
                      "http://127.0.0.1:9/ndbg/index.html,,127.0.0.1\n", encoding="utf-8")
    summary = run(pipeline, "nightly", **common(site, tmp_path / "wh", sources=broken))
    assert any(f.startswith("330299-dead") for f in summary.failures)
    reports = Lake(str(tmp_path / "wh" / "parquet")).read("reports")
    assert "330299-dead" not in set(reports["agency_id"])
    assert len(set(reports["agency_id"])) == len(MANIFEST["agencies"])


def test_nightly_on_a_dask_cluster(pipeline, site, tmp_path):
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        flow = pipeline.nightly.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        summary = pipeline.RunSummary(**flow(**common(site, tmp_path)))
    assert summary.parsed == DOCUMENTS
    assert summary.failures == [] or all("attachment" not in f for f in summary.failures)


def test_nightly_on_a_file_url_warehouse(pipeline, site, tmp_path):
    root = f"file://{tmp_path}/wh"
    summary = run(pipeline, "nightly", **common(site, root))
    assert summary.parsed == DOCUMENTS
    assert (tmp_path / "wh" / "raw").is_dir() and list((tmp_path / "wh" / "fetch_log").glob("*.parquet"))
    with connect(tmp_path / "wh" / "govreports.duckdb") as con:
        assert con.execute("SELECT count(*) FROM reports").fetchone()[0] == len(MANIFEST["reports"])
    again = run(pipeline, "nightly", **common(site, root))
    assert again.changed == 0
    reparsed = run(pipeline, "reparse", warehouse=root, sources_file=str(SITE / "sources.csv"), site=site)
    assert reparsed.parsed == summary.parsed


def test_an_unwritable_warehouse_fails_the_run_with_a_clear_message(pipeline, site, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(pipeline.StageFailed, match="not writable"):
        run(pipeline, "nightly", **common(site, blocker / "wh"))


def test_a_large_parse_stage_goes_in_larger_batches():
    from govreports.flows.pipeline import MAX_BATCH, PARSE_BATCH, batch_size

    assert batch_size(150, 2) == PARSE_BATCH  # a nightly's few pages: small batches, parsed as they come
    assert batch_size(1_000_000, 2) == MAX_BATCH  # a reparse: Prefect's cost per task paid 5 times less often
    assert PARSE_BATCH < batch_size(5_000, 2) < MAX_BATCH  # still enough batches for every process's window


def test_a_run_after_a_killed_one_deletes_what_it_staged_and_never_committed(pipeline, tmp_path):
    from govreports.flows.runlock import LOCK_NAME
    from tests.loadhelp import bundle

    wh = Warehouse(str(tmp_path))
    lake = Lake(wh.lake)
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    dead, _ = lake.stage([bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])
    wh.lock_dir.mkdir(parents=True, exist_ok=True)
    (wh.lock_dir / LOCK_NAME).write_text("pid 1, started earlier\n")  # its holder never released it
    with pipeline._locked(wh):
        assert not any((Path(wh.lake) / s.dataset / s.path).exists() for s in dead)
        assert set(lake.read("reports")["agency_id"]) == {"a1"}
    with pipeline._locked(wh):  # released cleanly: nothing to sweep, the committed files stay
        assert len(lake.read("reports")) == 1

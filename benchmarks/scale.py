"""Scale benchmarks: the whole pipeline over generated corpora of 1,000 to 100,000 reports.

    .venv/bin/python -m benchmarks.scale nightly --reports 1000 --json /tmp/scale-nightly-1k.json
    .venv/bin/python -m benchmarks.scale reparse --reports 10000 --json /tmp/scale-reparse-10k.json
    .venv/bin/python -m benchmarks.scale duckdb --warehouse /tmp/govreports-scale/reparse-100000/wh
    .venv/bin/python -m benchmarks.scale profile --warehouse /tmp/govreports-scale/reparse-10000/wh

`nightly`: generates a site of N reports (N/6 agencies × 2019–2024, html_cms / html_word / html_plain /
html_gbk, pages padded to 30–100 KB), serves it on 127.0.0.1 from another process (benchmarks/serve_site.py),
runs the nightly flow (delay 0) on Prefect's ephemeral API, checks that the warehouse's facts equal the
generated values for every report, then runs the flow again with nothing changed. Then the same stages run
without Prefect (a thread pool mirroring the flow) on a fresh warehouse, for the orchestration overhead.

`reparse`: builds the raw zone and the fetch log directly (RawZone.put, FetchLog.append with outcome "new",
kind "report", one log file per agency as the crawl writes them) from rendered pages, times the reparse flow,
and checks the facts against the generated values. `duckdb` times full scans of `licensing_trend`, a
cross-region comparison over `region_rollup` and the whole of `region_rollup` (QUERIES) over a warehouse (one
that `reparse` built, or it builds one). `profile` runs cProfile over
the parse and load stages of a built warehouse.

Every pipeline run happens in a child process, so that its peak resident memory (ru_maxrss) is the run's
own, not the generator's. Stage times come from wrappers around the plain stages of flows/steps.py (the
flows call them as `steps.<name>`): "inside stages" is the union of the intervals in which at least one
stage function was running; orchestration is the flow's wall time minus that. The Prefect home is a scratch
directory (its own SQLite database), so that other runs on the machine do not share it.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

SCRATCH = Path("/tmp/govreports-scale")
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)
CHUNK_AGENCIES = 400  # agencies generated per chunk (a multiple of 8: synthetic_site's department cycle)
SITE_PREFIX = "http://127.0.0.1:8000"  # URLs written to the fetch log by `reparse` (no server is needed)
STAGES = ("fetch", "refs_from_crawl", "with_first_seen", "not_loaded", "parse_pages", "load",
          "refresh")
# The parse stage seen from the flow's process (with parse processes, parse_pages and load run in them):
# handing pages to batches, and waiting for the batches' counts.
FLOW_STAGES = ("add", "_collect")


# -- the corpus ------------------------------------------------------------------------------------------------


def chunk_site(chunk: int, n_agencies: int, seed: int = 6, padded: bool = True) -> tuple[list, list]:
    """Agencies chunk*CHUNK_AGENCIES … (at most n_agencies in all) with one report per year, renamed to global
    ids (900001-jtj …) and padded to 30–100 KB pages (html_word pages are 86–98 KB without padding); not
    padded (`padded=False`), pages average 23 KB instead of 70."""
    from benchmarks.sites import synthetic_site

    offset = chunk * CHUNK_AGENCIES
    count = min(CHUNK_AGENCIES, n_agencies - offset)
    agencies, reports = synthetic_site(count, YEARS, seed=seed * 100_003 + chunk)
    rng = random.Random(seed * 7919 + chunk)
    new_agencies, renamed = [], {}
    for i, a in enumerate(agencies):
        g = offset + i
        code = a.agency_id.split("-", 1)[1]
        county = f"示例{g // 8 + 1}区"
        new = replace(a, agency_id=f"{900001 + g // 8}-{code}", name=county + a.name[len(a.county):],
                      county=county, listing_path=f"/{900001 + g // 8}-{code}/ndbg/index.html")
        renamed[a.agency_id] = new
        new_agencies.append(new)
    new_reports = []
    for r in reports:
        a = renamed[r.agency_id]
        chrome = rng.randint(25, 95)  # drawn either way, so that the rest of the corpus is the same
        chrome = chrome if padded and r.style != "html_word" else 0
        path = r.path.replace(f"/{r.agency_id}/", f"/{a.agency_id}/")
        new_reports.append(replace(r, agency_id=a.agency_id, path=path, spec=replace(r.spec, agency=a.name),
                                   chrome_kb=chrome))
    return new_agencies, new_reports


def expected_table(reports: Sequence) -> Any:
    """The values a correct parse gives, one row per (agency_id, year, "metric|applicant")."""
    import pyarrow as pa

    from benchmarks.sites import expected_values

    cols: dict[str, list] = {"agency_id": [], "year": [], "key": [], "status": [], "value": []}
    for r in reports:
        for key, (status, value) in expected_values(r).items():
            cols["agency_id"].append(r.agency_id)
            cols["year"].append(r.year)
            cols["key"].append(key)
            cols["status"].append(status)
            cols["value"].append(None if value is None else float(value))
    return pa.table({"agency_id": pa.array(cols["agency_id"], pa.string()), "year": pa.array(cols["year"], pa.int64()),
                     "key": pa.array(cols["key"], pa.string()), "status": pa.array(cols["status"], pa.string()),
                     "value": pa.array(cols["value"], pa.float64())})


def n_agencies_for(n_reports: int) -> int:
    return max(1, math.ceil(n_reports / len(YEARS)))


def _size_stats(sizes: Sequence[int]) -> dict:
    return {"pages": len(sizes), "mb": round(sum(sizes) / 2**20, 1), "min_kb": round(min(sizes) / 1024, 1),
            "median_kb": round(statistics.median(sizes) / 1024, 1), "max_kb": round(max(sizes) / 1024, 1)}


def generate_site(root: Path, n_reports: int) -> dict:
    """The site under root/site, its registry root/sources.csv, the expected values under root/expected/."""
    import pyarrow.parquet as pq

    from benchmarks.sites import build_site, write_registry

    n_agencies = n_agencies_for(n_reports)
    agencies, reports = [], []
    for c in range(math.ceil(n_agencies / CHUNK_AGENCIES)):
        a, r = chunk_site(c, n_agencies)
        agencies += a
        reports += r
    manifest = build_site(root / "site", agencies, reports)
    write_registry(root / "sources.csv", agencies)
    (root / "expected").mkdir(parents=True, exist_ok=True)
    pq.write_table(expected_table(reports), root / "expected" / "part-0.parquet")
    from collections import Counter

    return {"agencies": len(agencies), "reports": len(reports), "styles": dict(Counter(r.style for r in reports)),
            "sizes": _size_stats([m["bytes"] for m in manifest["reports"]])}


def _raw_chunk(args: tuple[int, int, str, str, bool]) -> dict:
    """One chunk of `reparse`'s corpus: pages into the raw zone, one fetch log file per agency, expected values."""
    import pyarrow.parquet as pq

    from benchmarks.sites import page_bytes
    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.rawzone import RawZone

    chunk, n_agencies, wh_root, expected_dir, padded = args
    agencies, reports = chunk_site(chunk, n_agencies, padded=padded)
    raw, log = RawZone(Path(wh_root, "raw")), FetchLog(Path(wh_root, "fetch_log"))
    by_agency: dict[str, list[dict]] = defaultdict(list)
    sizes = []
    for r in reports:
        data = page_bytes(r)
        sha, _ = raw.put(data)
        sizes.append(len(data))
        by_agency[r.agency_id].append({"url": SITE_PREFIX + r.path, "final_url": SITE_PREFIX + r.path,
                                       "agency_id": r.agency_id, "year": r.year, "kind": "report", "status": 200,
                                       "sha256": sha, "bytes": len(data), "outcome": "new"})
    for records in by_agency.values():
        log.append(records)
    pq.write_table(expected_table(reports), Path(expected_dir, f"part-{chunk:05d}.parquet"))
    from collections import Counter

    return {"agencies": agencies, "sizes": sizes, "styles": Counter(r.style for r in reports)}


def generate_raw(root: Path, n_reports: int, jobs: int, padded: bool = True) -> dict:
    """`reparse`'s corpus: root/wh/raw and root/wh/fetch_log, root/sources.csv, root/expected/."""
    from collections import Counter

    from benchmarks.sites import write_registry

    n_agencies = n_agencies_for(n_reports)
    (root / "expected").mkdir(parents=True, exist_ok=True)
    tasks = [(c, n_agencies, str(root / "wh"), str(root / "expected"), padded)
             for c in range(math.ceil(n_agencies / CHUNK_AGENCIES))]
    agencies, sizes, styles = [], [], Counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for out in pool.imap(_raw_chunk, tasks):
            agencies += out["agencies"]
            sizes += out["sizes"]
            styles += out["styles"]
    write_registry(root / "sources.csv", agencies)
    return {"agencies": len(agencies), "reports": len(sizes), "styles": dict(styles), "sizes": _size_stats(sizes),
            "padded": padded}


# -- checking what was loaded ----------------------------------------------------------------------------------


def verify(db: Path, expected_glob: str, n_reports: int) -> dict:
    """Compare the warehouse's current facts with the generated values, cell by cell, for every report."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        cells = con.execute(f"""
            WITH f AS (SELECT agency_id, year, coalesce(metric, 'None') || '|' || coalesce(applicant, '') AS key,
                              value_status AS status, value FROM facts),
                 e AS (SELECT * FROM read_parquet('{expected_glob}'))
            SELECT count(*) FILTER (WHERE f.key IS NULL) AS missing,
                   count(*) FILTER (WHERE e.key IS NULL) AS extra,
                   count(*) FILTER (WHERE f.key IS NOT NULL AND e.key IS NOT NULL AND (f.status <> e.status
                       OR (f.value IS NULL) <> (e.value IS NULL) OR abs(f.value - e.value) > 1e-6)) AS wrong,
                   count(*) FILTER (WHERE f.key IS NOT NULL AND e.key IS NOT NULL) AS matched
            FROM f FULL OUTER JOIN e ON f.agency_id = e.agency_id AND f.year = e.year AND f.key = e.key
        """).fetchone()
        reports = con.execute("""SELECT count(*), count(*) FILTER (WHERE status = 'parsed'),
                                        coalesce(sum(n_checks_failed), 0), count(DISTINCT agency_id)
                                 FROM reports""").fetchone()
        facts_rows = con.execute("SELECT count(*) FROM facts_all_versions").fetchone()[0]
    finally:
        con.close()
    out = {"cells_missing": cells[0], "cells_extra": cells[1], "cells_wrong": cells[2],
           "cells_equal": cells[3] - cells[2],
           "reports": reports[0], "reports_parsed": reports[1], "checks_failed": int(reports[2]),
           "agencies": reports[3], "fact_rows": facts_rows}
    out["ok"] = (cells[0] == cells[1] == cells[2] == 0 and reports[0] == reports[1] == n_reports
                 and out["checks_failed"] == 0)
    return out


# -- child processes: the measured runs ------------------------------------------------------------------------


class StageClock:
    """Wraps flows.steps' stage functions and records when each call ran (any thread)."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._lock = threading.Lock()

    def install(self) -> None:
        from govreports.flows import pipeline, steps

        for module, name in [(steps, n) for n in STAGES] + [(pipeline._ParseStage, n) for n in FLOW_STAGES]:
            fn = getattr(module, name)

            def wrapped(*args, _fn=fn, _name=name, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    t1 = time.perf_counter()
                    with self._lock:
                        self.spans[_name].append((t0, t1))

            setattr(module, name, wrapped)

    def reset(self) -> None:
        with self._lock:
            self.spans.clear()

    @staticmethod
    def _union(spans: list[tuple[float, float]]) -> float:
        total, end = 0.0, -math.inf
        for a, b in sorted(spans):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total

    def report(self, wall: float, reports: int) -> dict:
        stages = {}
        for name, spans in self.spans.items():
            wall_s = self._union(spans)
            stages[name] = {"calls": len(spans), "busy_s": round(sum(b - a for a, b in spans), 3),
                            "wall_s": round(wall_s, 3),
                            "reports_per_s": round(reports / wall_s, 1) if wall_s > 0 else None}
        inside = self._union([s for spans in self.spans.values() for s in spans])
        return {"wall_s": round(wall, 3), "inside_stages_s": round(inside, 3),
                "orchestration_s": round(wall - inside, 3),
                "orchestration_share": round((wall - inside) / wall, 4) if wall > 0 else None,
                "reports_per_s": round(reports / wall, 1) if wall > 0 else None, "stages": stages}


class RssSampler:
    """Samples the resident memory of this process and of its children (the Prefect server, the parse
    processes) every 0.5 s. The total over the tree is PSS (proportional set size): processes share
    pages (the Python runtime, libraries), which RSS would count in each."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak_children_mb = 0.0
        self.peak_total_pss_mb = 0.0  # this process and every descendant at once
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()

    @staticmethod
    def _pss(proc: Any) -> int:
        try:
            return proc.memory_full_info().pss
        except (AttributeError, OSError):
            return proc.memory_info().rss

    def _run(self) -> None:
        import psutil

        tick = 0
        while not self._stop.wait(0.5):
            tick += 1
            try:
                rss = self.proc.memory_info().rss / 2**20
                kids = self.proc.children(recursive=True)
                kids_rss = sum(c.memory_info().rss for c in kids) / 2**20
                # PSS reads every process's smaps: every 2 s, so the sampler stays ~1% of the run's CPU.
                total = (self._pss(self.proc) + sum(self._pss(c) for c in kids)) / 2**20 if tick % 4 == 0 else 0.0
            except psutil.Error:
                continue
            self.samples.append((round(time.perf_counter() - self._t0, 1), round(rss, 1)))
            self.peak_children_mb = max(self.peak_children_mb, kids_rss)
            self.peak_total_pss_mb = max(self.peak_total_pss_mb, total)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        step = max(1, len(self.samples) // 20)
        return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "peak_children_rss_mb": round(self.peak_children_mb, 1),
                "peak_total_pss_mb": round(self.peak_total_pss_mb, 1),
                "rss_timeline_mb": self.samples[::step]}


def cpu_now() -> tuple[float, float]:
    """CPU seconds (user + system) used so far by this process and by its live children (the Prefect server,
    the parse processes), with what their own ended children used."""
    import psutil

    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    kids = 0.0
    for child in me.children(recursive=True):
        try:
            kids += sum(child.cpu_times()[:4])  # user, system, and those of its reaped children
        except psutil.Error:
            pass
    return own, kids


def cpu_since(start: tuple[float, float]) -> dict:
    own, kids = cpu_now()
    return {"cpu_flow_process_s": round(own - start[0], 2), "cpu_children_s": round(kids - start[1], 2)}


def server_cpu(pid: int | None) -> float:
    """CPU seconds the site server (another process, on the same 2 cores) has used so far; 0 if unknown."""
    if pid is None:
        return 0.0
    import psutil

    try:
        return sum(psutil.Process(pid).cpu_times()[:2])
    except psutil.Error:
        return 0.0


def _warm_prefect() -> float:
    """Start the ephemeral API with a trivial flow, so that the measured runs do not include its start."""
    from govreports.flows.prefect_env import configure

    configure()
    from prefect import flow

    @flow(name="scale-warmup")
    def warmup() -> int:
        return 1

    t0 = time.perf_counter()
    warmup()
    return time.perf_counter() - t0


def child_nightly(spec: dict) -> dict:
    clock = StageClock()
    clock.install()
    rss = RssSampler()
    startup = _warm_prefect()
    from govreports.flows.pipeline import nightly
    from govreports.flows.prefect_env import local_runs

    out: dict[str, Any] = {"prefect_startup_s": round(startup, 2), "runs": []}
    for _ in range(spec["runs"]):
        clock.reset()
        cpu0 = cpu_now()
        server0 = server_cpu(spec.get("server_pid"))
        t0 = time.perf_counter()
        with local_runs():  # as `govreports run` runs a flow
            summary = nightly(sources_file=spec["sources"], warehouse=spec["warehouse"], site=spec["site"],
                              allow_loopback=True, delay=0.0, timeout=60.0)
        wall = time.perf_counter() - t0
        run = clock.report(wall, spec["reports"]) | cpu_since(cpu0)
        run["cpu_site_server_s"] = round(server_cpu(spec.get("server_pid")) - server0, 2)
        run["summary"] = {k: v for k, v in summary.items() if k != "failures"}
        run["summary"]["n_failures"] = len(summary["failures"])
        run["failures"] = summary["failures"][:10]
        out["runs"].append(run)
        print(f"  nightly run: {wall:.1f} s, {summary['fetched']} fetched, {summary['unchanged']} unchanged, "
              f"{summary['parsed']} parsed", flush=True)
    out |= rss.stop()
    return out


def _parse_in_processes(wh: Any, batches: list, by_id: dict, processes: int) -> list:
    """parse_and_load over the batches in spawned processes, as the flow's process pool runs them."""
    from concurrent.futures import ProcessPoolExecutor

    from govreports.flows import steps
    from govreports.flows.pipeline import _parse_process_start

    with ProcessPoolExecutor(processes, multiprocessing.get_context("spawn"), initializer=_parse_process_start) as p:
        return list(p.map(steps.parse_and_load, [wh.raw] * len(batches), [wh.lake] * len(batches), batches,
                          [steps.sources_for(b, by_id) for b in batches]))


def child_plain(spec: dict) -> dict:
    """The nightly's stages without Prefect: one crawl, then (not overlapping it, unlike the flow)
    parse-and-load batches of whole agencies on 4 threads (in a spawned process pool when the flow would
    use one), then one refresh."""
    from concurrent.futures import ThreadPoolExecutor

    clock = StageClock()
    clock.install()
    rss = RssSampler()
    from govreports.extract.fetch import Fetcher
    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.sources import load_sources
    from govreports.flows import steps
    from govreports.flows.config import Warehouse
    from govreports.flows.pipeline import batch_size, parse_processes
    from govreports.load.lake import Lake

    wh = Warehouse(spec["warehouse"])
    sources = load_sources(spec["sources"], site=spec["site"])
    by_id = {s.agency_id: s for s in sources}

    def fetch_all() -> Any:
        with Fetcher(allow_loopback=True, delay=0.0, timeout=60.0) as fetcher:
            return steps.fetch(sources, wh, fetcher)

    out: dict[str, Any] = {"runs": []}
    for _ in range(spec["runs"]):
        clock.reset()
        cpu0 = cpu_now()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = [fetch_all()]
            log = FetchLog(wh.fetch_log)
            log.compact()
            todo = steps.with_first_seen(steps.not_loaded(steps.refs_from_crawl(results), Lake(wh.lake), db=wh.db),
                                         log)
            n = parse_processes(len(todo))
            batches = steps.agency_batches(todo, batch_size(len(todo), n))
            if n > 1:
                outcomes = _parse_in_processes(wh, batches, by_id, n)
            else:
                outcomes = list(pool.map(lambda b: steps.parse_and_load(wh.raw, wh.lake, b, by_id), batches))
            parsed = sum(o.parsed for o in outcomes)
            steps.commit(wh.lake, [f for o in outcomes for f in o.staged])
        if parsed:
            steps.refresh(wh)
        wall = time.perf_counter() - t0
        run = clock.report(wall, spec["reports"]) | cpu_since(cpu0)
        run["parsed"] = parsed
        out["runs"].append(run)
        print(f"  plain run: {wall:.1f} s, {parsed} parsed", flush=True)
    out |= rss.stop()
    return out


def child_reparse(spec: dict) -> dict:
    clock = StageClock()
    clock.install()
    rss = RssSampler()
    startup = _warm_prefect()
    from govreports.flows.pipeline import reparse
    from govreports.flows.prefect_env import local_runs

    cpu0 = cpu_now()
    t0 = time.perf_counter()
    with local_runs():  # as `govreports reparse` runs it
        summary = reparse(warehouse=spec["warehouse"], sources_file=spec["sources"], site=spec["site"])
    wall = time.perf_counter() - t0
    out = clock.report(wall, spec["reports"]) | cpu_since(cpu0)
    out["prefect_startup_s"] = round(startup, 2)
    out["summary"] = {k: v for k, v in summary.items() if k != "failures"}
    out["summary"]["n_failures"] = len(summary["failures"])
    out["failures"] = summary["failures"][:10]
    out |= rss.stop()
    return out


def _changed_pages(spec: dict, k: int, tag: str) -> list:
    """k reports of the corpus, republished with a trivial change (a comment appended: a new version, the same
    values), stored in the raw zone and logged as the crawl logs a new version, and handed on as the crawl hands
    it on (with the time it was fetched: no read of the log's versions for it)."""
    import pandas as pd

    from benchmarks.sites import page_bytes
    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.rawzone import RawZone
    from govreports.flows.steps import PageRef

    n_agencies, padded = spec["agencies"], spec["padded"]
    chunks = math.ceil(n_agencies / CHUNK_AGENCIES)
    rng = random.Random(f"{tag}-{k}")
    # From as few chunks as hold k reports: each chunk is generated again to republish its pages (at a million
    # reports, one of 417 chunks; where the changed reports are makes no difference to the pipeline's work).
    per_chunk = CHUNK_AGENCIES * len(YEARS)
    few = rng.sample(range(chunks), min(chunks, math.ceil(k / per_chunk) + 1))
    picked = sorted(rng.sample([c * per_chunk + j for c in few for j in range(per_chunk)], k))
    raw, log = RawZone(Path(spec["warehouse"], "raw")), FetchLog(Path(spec["warehouse"], "fetch_log"))
    now = pd.Timestamp.now(tz="UTC")
    refs, records = [], []
    for chunk in sorted({i // (CHUNK_AGENCIES * len(YEARS)) for i in picked}):
        _, reports = chunk_site(chunk, n_agencies, padded=padded)
        for i in (i for i in picked if i // (CHUNK_AGENCIES * len(YEARS)) == chunk):
            r = reports[(i % (CHUNK_AGENCIES * len(YEARS))) % len(reports)]
            data = page_bytes(r) + f"<!-- {tag} -->".encode()
            sha, _ = raw.put(data)
            url = SITE_PREFIX + r.path
            records.append({"url": url, "final_url": url, "agency_id": r.agency_id, "year": r.year, "kind": "report",
                            "status": 200, "sha256": sha, "bytes": len(data), "outcome": "new_version",
                            "fetched_at": now})
            refs.append(PageRef(r.agency_id, url, sha, r.year, now))  # as the crawl hands on a new version
    log.append(records)
    return refs


def child_refresh(spec: dict) -> dict:
    """A nightly run's work after its requests, for k changed reports, through the flow's step functions (not
    in a Prefect flow: its share is measured by `nightly`): the parse cache (the database's ids), each version's
    first sighting (the fetch log), parse and stage in 2 processes, merge and commit, refresh of the database."""

    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.sources import load_sources
    from govreports.flows import steps
    from govreports.flows.config import Warehouse
    from govreports.flows.pipeline import batch_size
    from govreports.load.lake import Lake
    from govreports.load.warehouse import built_from

    rss = RssSampler()
    wh = Warehouse(spec["warehouse"])
    by_id = {s.agency_id: s for s in load_sources(spec["sources"], site=SITE_PREFIX)}
    out: dict[str, Any] = {"runs": []}
    for k in spec["changed"]:
        refs = _changed_pages(spec, k, f"{spec['tag']}-{k}")
        times: dict[str, float] = {}
        cpu0 = cpu_now()
        t0 = time.perf_counter()
        todo = steps.not_loaded(refs, Lake(wh.lake), db=wh.db)
        times["not_loaded"] = time.perf_counter() - t0
        t = time.perf_counter()
        todo = steps.with_first_seen(todo, FetchLog(wh.fetch_log))
        times["with_first_seen"] = time.perf_counter() - t
        t = time.perf_counter()
        batches = steps.agency_batches(todo, batch_size(len(todo), 2))
        outcomes = _parse_in_processes(wh, batches, by_id, 2)
        times["parse_and_stage"] = time.perf_counter() - t
        t = time.perf_counter()
        steps.commit(wh.lake, [f for o in outcomes for f in o.staged])
        times["merge_and_commit"] = time.perf_counter() - t
        before = built_from(wh.db)
        t = time.perf_counter()
        steps.refresh(wh, list(by_id.values()))
        times["refresh"] = time.perf_counter() - t
        wall = time.perf_counter() - t0
        run = {"changed": k, "parsed": sum(o.parsed for o in outcomes), "wall_s": round(wall, 2),
               "stages_s": {n: round(v, 2) for n, v in times.items()}, "versions_before": before.versions if before
               else None, "versions_after": built_from(wh.db).versions} | cpu_since(cpu0)
        out["runs"].append(run)
        print(f"  {k} changed: {wall:.1f} s {run['stages_s']}", flush=True)
    out |= rss.stop()
    return out


def child_quiet(spec: dict) -> dict:
    """A nightly with nothing changed, after its requests: the latest attempt per URL (what the crawl's
    conditional requests read first), the night's attempts logged as the crawl logs them (every report page
    answered 304, a file per 64 agencies: the requests themselves, not timed), the parse cache over every page the
    crawl hands on (twice, as the flow: as they come and from the crawl's result), the compaction of the night's
    log files. Nothing is parsed, so the flow does not refresh the database (pipeline._finish)."""
    import pandas as pd

    from govreports.extract.fetchlog import FetchLog
    from govreports.flows import steps
    from govreports.flows.config import Warehouse
    from govreports.load.lake import Lake

    rss = RssSampler()
    wh = Warehouse(spec["warehouse"])
    log = FetchLog(wh.fetch_log)
    times: dict[str, float] = {}
    cpu0 = cpu_now()
    t = time.perf_counter()
    log.last_success(SITE_PREFIX + "/")
    times["latest_attempts"] = time.perf_counter() - t
    cpu_latest = cpu_since(cpu0)
    versions = log.versions()
    versions = versions[versions["is_current"]]
    now = pd.Timestamp.now(tz="UTC")
    records = [{"url": u, "final_url": u, "agency_id": a, "year": None if pd.isna(y) else int(y), "kind": "report",
                "status": 304, "sha256": h, "outcome": "not_modified", "fetched_at": now}
               for u, a, y, h in zip(versions["url"], versions["agency_id"], versions["year"], versions["sha256"],
                                     strict=True)]
    by_agency: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_agency[r["agency_id"]].append(r)
    agencies = list(by_agency)
    t = time.perf_counter()
    for i in range(0, len(agencies), 64):
        log.append([r for a in agencies[i:i + 64] for r in by_agency[a]])
    logged_s = time.perf_counter() - t
    refs = [steps.PageRef(r["agency_id"], r["url"], r["sha256"], r["year"], None) for r in records]
    del records, by_agency, versions
    cpu1 = cpu_now()
    t = time.perf_counter()
    seen = steps.loaded_ids(Lake(wh.lake), wh.db)
    times["loaded_ids"] = time.perf_counter() - t
    t = time.perf_counter()
    todo = steps.unseen(refs, seen) + steps.unseen(refs, seen)
    times["parse_cache_twice"] = time.perf_counter() - t
    t = time.perf_counter()
    merged = log.compact()
    times["compact_log"] = time.perf_counter() - t
    cpu = cpu_since(cpu1)
    print(f"  nothing changed: {len(refs)} pages handed on, {len(todo)} to parse; {times} "
          f"(the night's {len(agencies) // 64 + 1} log files written in {logged_s:.1f} s, not counted)", flush=True)
    return {"pages": len(refs), "to_parse": len(todo), "times_s": {n: round(v, 2) for n, v in times.items()},
            "log_files_merged": merged, "night_logged_s": round(logged_s, 1),
            "cpu_latest_attempts": cpu_latest, "cpu_after_requests": cpu} | rss.stop()


CHILDREN = {"nightly": child_nightly, "plain": child_plain, "reparse": child_reparse, "refresh": child_refresh,
            "quiet": child_quiet}


def run_child(kind: str, spec: dict, root: Path, module: str = "benchmarks.scale") -> dict:
    """Run a measured child process (`python -m <module> _child <kind> <spec> <out>`); returns what it wrote, with
    /usr/bin/time's peak RSS (the largest single process of the tree) when available."""
    spec_file, out_file, time_file = root / f"{kind}.spec.json", root / f"{kind}.out.json", root / f"{kind}.time.txt"
    spec_file.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", module, "_child", kind, str(spec_file), str(out_file)]
    if Path("/usr/bin/time").exists():
        cmd = ["/usr/bin/time", "-v", "-o", str(time_file), *cmd]
    env = dict(os.environ, PREFECT_HOME=str(root / "prefect-home"), PYTHONUNBUFFERED="1")
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    out = json.loads(out_file.read_text())
    if time_file.exists():
        for line in time_file.read_text().splitlines():
            if "Maximum resident set size" in line:
                out["time_v_max_rss_mb"] = round(int(line.rsplit(":", 1)[1]) / 1024, 1)
            if "Elapsed (wall clock)" in line:
                out["time_v_elapsed"] = line.rsplit(": ", 1)[1].strip()
    return out


# -- commands --------------------------------------------------------------------------------------------------


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def cmd_nightly(args: argparse.Namespace) -> dict:
    root = _fresh(args.scratch / f"nightly-{args.reports}")
    t0 = time.perf_counter()
    corpus = generate_site(root, args.reports)
    n = corpus["reports"]
    result: dict[str, Any] = {"benchmark": "nightly", "reports": n, "corpus": corpus,
                              "generate_s": round(time.perf_counter() - t0, 1)}
    print(f"site: {corpus['agencies']} agencies, {n} reports, {corpus['sizes']} in {result['generate_s']} s",
          flush=True)
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.serve_site", str(root / "site")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        url = server.stdout.readline().strip()
        spec = {"sources": str(root / "sources.csv"), "site": url, "reports": n, "runs": 2, "server_pid": server.pid}
        result["prefect"] = run_child("nightly", spec | {"warehouse": str(root / "wh")}, root)
        result["check"] = verify(root / "wh" / "govreports.duckdb", str(root / "expected" / "*.parquet"), n)
        if not args.no_plain:
            result["plain"] = run_child("plain", spec | {"warehouse": str(root / "wh-plain")}, root)
            result["check_plain"] = verify(root / "wh-plain" / "govreports.duckdb",
                                           str(root / "expected" / "*.parquet"), n)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    first, second = result["prefect"]["runs"]
    result["second_over_first"] = round(second["wall_s"] / first["wall_s"], 4)
    result["warehouse_mb"] = _du_mb(root / "wh")
    if "plain" in result:
        result["prefect_over_plain"] = round(first["wall_s"] / result["plain"]["runs"][0]["wall_s"], 3)
    _print_nightly(result)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _print_stages(run: dict, indent: str = "    ") -> None:
    for name, s in run["stages"].items():
        print(f"{indent}{name:<16} calls {s['calls']:>5}  wall {s['wall_s']:>8.2f} s  busy {s['busy_s']:>8.2f} s  "
              f"{s['reports_per_s'] or 0:>9.1f} reports/s")


def _print_nightly(r: dict) -> None:
    p = r["prefect"]
    print(f"\nnightly, {r['reports']} reports ({r['corpus']['agencies']} agencies), Prefect start-up "
          f"{p['prefect_startup_s']} s (not counted)")
    for label, run in zip(("first run", "second run (nothing changed)"), p["runs"], strict=True):
        print(f"  {label}: {run['wall_s']:.1f} s = {run['reports_per_s']} reports/s; inside stages "
              f"{run['inside_stages_s']:.1f} s; orchestration {run['orchestration_s']:.1f} s "
              f"({100 * run['orchestration_share']:.1f}%); CPU: flow process {run['cpu_flow_process_s']} s, "
              f"children (Prefect server, parse processes) {run['cpu_children_s']} s; "
              f"the site server {run.get('cpu_site_server_s', 0.0)} s")
        _print_stages(run)
    print(f"  second / first: {100 * r['second_over_first']:.1f}%  (goal < 10%)")
    print(f"  peak RSS (flow process): {p['peak_rss_mb']} MB; children (Prefect server, parse processes): "
          f"{p['peak_children_rss_mb']} MB; whole tree at once: {p['peak_total_pss_mb']} MB PSS")
    print(f"  check: {r['check']}")
    if "plain" in r:
        for label, run in zip(("plain first run", "plain second run"), r["plain"]["runs"], strict=True):
            print(f"  {label} (no Prefect): {run['wall_s']:.1f} s = {run['reports_per_s']} reports/s; "
                  f"CPU {run['cpu_flow_process_s']} s")
            _print_stages(run)
        print(f"  Prefect / plain (first run): {r['prefect_over_plain']}; plain check ok: {r['check_plain']['ok']}")


def build_reparse_corpus(root: Path, n: int, jobs: int, padded: bool = True) -> dict:
    t0 = time.perf_counter()
    corpus = generate_raw(root, n, jobs, padded)
    corpus["generate_s"] = round(time.perf_counter() - t0, 1)
    corpus["raw_mb"] = _du_mb(root / "wh" / "raw")
    corpus["fetch_log_files"] = len(list((root / "wh" / "fetch_log").glob("*.parquet")))
    print(f"raw zone: {corpus['agencies']} agencies, {corpus['reports']} reports, {corpus['sizes']}, "
          f"{corpus['fetch_log_files']} fetch log files, in {corpus['generate_s']} s", flush=True)
    return corpus


def cmd_reparse(args: argparse.Namespace) -> dict:
    root = args.scratch / f"reparse-{args.reports}"
    if args.reuse and (root / "wh" / "raw").is_dir():
        corpus = json.loads((root / "corpus.json").read_text())
        shutil.rmtree(root / "wh" / "parquet", ignore_errors=True)
    else:
        _fresh(root)
        corpus = build_reparse_corpus(root, args.reports, args.jobs, not args.unpadded)
        (root / "corpus.json").write_text(json.dumps(corpus))
    if args.command == "corpus":
        return {"benchmark": "corpus", "corpus": corpus, "root": str(root)}
    from govreports.load.lake import Lake

    n = corpus["reports"]
    spec = {"warehouse": str(root / "wh"), "sources": str(root / "sources.csv"), "site": SITE_PREFIX, "reports": n}
    run = run_child("reparse", spec, root)
    result = {"benchmark": "reparse", "reports": n, "corpus": corpus, "run": run,
              "goal_600s_at_100k_met": run["wall_s"] * 100_000 / n < 600,
              "check": verify(root / "wh" / "govreports.duckdb", str(root / "expected" / "*.parquet"), n),
              "lake_files": Lake(str(root / "wh" / "parquet")).file_count(),
              "lake_mb": _du_mb(root / "wh" / "parquet"),
              "db_mb": round((root / "wh" / "govreports.duckdb").stat().st_size / 2**20, 1)}
    print(f"\nreparse, {n} reports: {run['wall_s']:.1f} s = {run['reports_per_s']} reports/s; orchestration "
          f"{run['orchestration_s']:.1f} s ({100 * run['orchestration_share']:.1f}%); Prefect start-up "
          f"{run['prefect_startup_s']} s (not counted); CPU: flow process {run['cpu_flow_process_s']} s, "
          f"children (Prefect server, parse processes) {run['cpu_children_s']} s")
    _print_stages(run)
    print(f"  peak RSS: {run['peak_rss_mb']} MB (ru_maxrss), {run.get('time_v_max_rss_mb')} MB (/usr/bin/time -v); "
          f"children (Prefect server, parse processes) {run['peak_children_rss_mb']} MB; "
          f"whole tree at once {run['peak_total_pss_mb']} MB PSS")
    print(f"  lake: {result['lake_files']} part files, {result['lake_mb']} MB; database {result['db_mb']} MB")
    print(f"  check: {result['check']}")
    if args.queries:
        result["duckdb"] = duckdb_queries(root / "wh" / "govreports.duckdb", args.repeat)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


# The analysts' queries timed: full scans over the whole history. `licensing_by_region` is the cross-region
# comparison: every region at every level, every year, with its change from the year before, for one metric;
# `region_rollup` reads the whole table out (every metric and applicant column).
QUERIES = {
    "licensing_trend": "SELECT * FROM licensing_trend",
    "licensing_by_region": """
        SELECT region, "year", total, units, units_reporting,
               total - lag(total) OVER (PARTITION BY region ORDER BY "year") AS change
        FROM region_rollup WHERE metric = 'licensing_decisions' AND applicant = ''""",
    "region_rollup": "SELECT * FROM region_rollup",
}


def duckdb_queries(db: Path, repeat: int) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    def one(sql: str) -> Any:
        return con.sql(sql).fetchall()[0][0]

    out: dict[str, Any] = {"threads": one("SELECT current_setting('threads')"),
                           "fact_rows": one("SELECT count(*) FROM facts_all_versions"),
                           "reports": one("SELECT count(*) FROM reports")}
    for name, sql in QUERIES.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            table = con.sql(sql).to_arrow_table()  # DuckDB's relation API: no extra copy of the rows
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        one(f"SELECT count(*) FROM ({sql})")
        count_s = time.perf_counter() - t0
        out[name] = {"rows": table.num_rows, "first_s": round(times[0], 3),
                     "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                     "count_s": round(count_s, 3)}
        print(f"  {name}: {table.num_rows} rows; first {times[0]:.3f} s, median {statistics.median(times):.3f} s "
              f"over {repeat}; count(*) {count_s:.3f} s", flush=True)
    con.close()
    return out


def replicate(src: Path, dst: Path, copies: int) -> dict:
    """A copy of a built database whose *_all_versions tables hold `copies` copies of every report, each copy
    with its own agency ids, report ids and regions (`<id>~k`, `<region>~k`): the same tables and views at
    copies × the size, without building a lake that large through the pipeline."""
    import duckdb

    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    t0 = time.perf_counter()
    con = duckdb.connect(str(dst))
    try:
        for table in ("reports_all_versions", "facts_all_versions", "checks_all_versions"):
            cols = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            renamed = {"agency_id", "report_id", "region", "parent_region"}
            select = ", ".join(f"{c} || '~' || k AS {c}" if c in renamed else c for c in cols)
            con.execute(f"CREATE TEMP TABLE base AS SELECT * FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT {select} FROM base, range(1, {copies}) r(k)")
            con.execute("DROP TABLE base")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"copies": copies, "replicate_s": round(time.perf_counter() - t0, 1),
            "db_mb": round(dst.stat().st_size / 2**20, 1)}


def cmd_refresh(args: argparse.Namespace) -> dict:
    """On the warehouse `reparse --keep` left: nights with k changed reports each."""
    root = args.scratch / f"reparse-{args.reports}"
    corpus = json.loads((root / "corpus.json").read_text())
    spec = {"warehouse": str(root / "wh"), "sources": str(root / "sources.csv"), "changed": args.changed,
            "agencies": corpus["agencies"], "padded": corpus.get("padded", True), "tag": time.strftime("%Y%m%d%H%M%S")}
    run = run_child("refresh", spec, root)
    from govreports.load.lake import Lake

    result = {"benchmark": "refresh", "reports": corpus["reports"], "run": run,
              "lake_files": Lake(str(root / "wh" / "parquet")).file_count(),
              "db_mb": round((root / "wh" / "govreports.duckdb").stat().st_size / 2**20, 1)}
    print(f"  peak RSS {run['peak_rss_mb']} MB; whole tree {run['peak_total_pss_mb']} MB PSS; "
          f"lake {result['lake_files']} files; database {result['db_mb']} MB")
    return result


def cmd_quiet(args: argparse.Namespace) -> dict:
    """On the warehouse `reparse --keep` left: a nightly with nothing changed, after its requests."""
    root = args.scratch / f"reparse-{args.reports}"
    spec = {"warehouse": str(root / "wh")}
    run = run_child("quiet", spec, root)
    print(f"  peak RSS {run['peak_rss_mb']} MB; whole tree {run['peak_total_pss_mb']} MB PSS")
    return {"benchmark": "quiet", "reports": json.loads((root / "corpus.json").read_text())["reports"], "run": run}


def cmd_duckdb(args: argparse.Namespace) -> dict:
    if args.warehouse and args.replicate > 1:
        dst = args.scratch / "duckdb-replicated" / "govreports.duckdb"
        rep = replicate(Path(args.warehouse) / "govreports.duckdb", dst, args.replicate)
        print(f"replicated {args.warehouse} × {args.replicate}: {rep}", flush=True)
        out = {"benchmark": "duckdb", "source": str(args.warehouse), **rep, **duckdb_queries(dst, args.repeat)}
        if not args.keep:
            shutil.rmtree(dst.parent, ignore_errors=True)
        return out
    if args.warehouse:
        db = Path(args.warehouse) / "govreports.duckdb"
        print(f"DuckDB over {db} ({round(db.stat().st_size / 2**20, 1)} MB)")
        return {"benchmark": "duckdb", "db": str(db), **duckdb_queries(db, args.repeat)}
    args.queries = True
    result = cmd_reparse(args)
    return {"benchmark": "duckdb", "built_by": "reparse", **result["duckdb"], "reparse": result}


def cmd_profile(args: argparse.Namespace) -> dict:
    """cProfile of the parse and load stages over the first --pages refs of a built warehouse."""
    import cProfile
    import io
    import pstats

    from govreports.extract.fetchlog import FetchLog
    from govreports.extract.sources import load_sources
    from govreports.flows import steps
    from govreports.flows.config import Warehouse

    wh = Warehouse(args.warehouse)
    refs = steps.refs_from_log(FetchLog(wh.fetch_log))[: args.pages]
    sources = {s.agency_id: s for s in load_sources(args.sources, site=SITE_PREFIX)} if args.sources else {}
    lake = _fresh(args.scratch / "profile-lake")
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(0, len(refs), 50):
        outcome = steps.parse_pages(wh.raw, refs[i:i + 50], sources)
        steps.load(str(lake), outcome.bundles)
    prof.disable()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {"benchmark": "profile", "pages": len(refs), "wall_s": round(wall, 2)}
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(args.top)
        result[key] = buf.getvalue()
        print(buf.getvalue())
    print(f"profile: {len(refs)} pages parsed and loaded in {wall:.1f} s (under cProfile)")
    shutil.rmtree(lake, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        kind, spec_file, out_file = argv[1:4]
        out = CHILDREN[kind](json.loads(Path(spec_file).read_text()))
        Path(out_file).write_text(json.dumps(out))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, default=SCRATCH, help=f"scratch directory (default {SCRATCH})")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("nightly", help="end-to-end nightly flow over a served site, twice, and without Prefect")
    p.add_argument("--reports", type=int, default=1000)
    p.add_argument("--no-plain", action="store_true", help="skip the run without Prefect")
    helps = {"reparse": "reparse from a generated raw zone",
             "duckdb": "full scans of licensing_trend, the cross-region comparison and region_rollup",
             "corpus": "only generate reparse's raw zone and fetch log (kept, for --reuse)"}
    for name in ("reparse", "duckdb", "corpus"):
        q = sub.add_parser(name, help=helps[name])
        q.add_argument("--reports", type=int, default=10_000)
        q.add_argument("--jobs", type=int, default=2, help="processes generating the corpus")
        q.add_argument("--reuse", action="store_true", help="reuse a raw zone built by an earlier run (--keep)")
        q.add_argument("--repeat", type=int, default=5)
        q.add_argument("--unpadded", action="store_true",
                       help="pages without the 25–95 KB of padding (23 KB on average instead of 70): a million "
                            "padded pages need 68 GB of disk")
        if name == "reparse":
            q.add_argument("--queries", action="store_true", help="then time the DuckDB scans on the result")
        else:
            q.add_argument("--warehouse", help="time the scans on this warehouse instead of building one")
            q.add_argument("--replicate", type=int, default=1,
                           help="with --warehouse: scan a copy holding this many copies of every report")
    p = sub.add_parser("refresh", help="nights of k changed reports on the warehouse `reparse --keep` left")
    p.add_argument("--reports", type=int, required=True, help="the size of the kept reparse corpus")
    p.add_argument("--changed", type=int, nargs="+", default=[1, 10_000])
    p = sub.add_parser("quiet", help="a nightly with nothing changed on the warehouse `reparse --keep` left")
    p.add_argument("--reports", type=int, required=True, help="the size of the kept reparse corpus")
    p = sub.add_parser("profile", help="cProfile of parse + load over a built warehouse")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--sources")
    p.add_argument("--pages", type=int, default=1000)
    p.add_argument("--top", type=int, default=30)
    for q in sub.choices.values():
        q.add_argument("--json", type=Path, help="write the numbers to this file")
        q.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    commands = {"nightly": cmd_nightly, "reparse": cmd_reparse, "corpus": cmd_reparse, "duckdb": cmd_duckdb,
                "profile": cmd_profile, "refresh": cmd_refresh, "quiet": cmd_quiet}
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result = commands[args.command](args)
    result |= {"date": started, "command": "python -m benchmarks.scale " + " ".join(argv), "cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

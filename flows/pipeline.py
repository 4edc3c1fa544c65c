"""Prefect flows: nightly, backfill and reparse.

Tasks wrap the plain stages of flows/steps.py: one fetch task (the crawl, on its own threads), and
parse-and-load tasks of whole agencies' pages (one agency's year is a lake partition, so batches run in
parallel), started as the crawl hands pages on, on Prefect's process pool for a large stage (parsing is
Python under the GIL); then the database is rebuilt once. Only the network stage retries.
"""

from __future__ import annotations

from govreports.flows.prefect_env import configure

configure()

import contextlib  # noqa: E402 - prefect must see its settings before it is imported
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from concurrent.futures.process import BrokenProcessPool  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

from prefect import flow, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.context import FlowRunContext  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner  # noqa: E402

from govreports.extract import fetch as fetch_module  # noqa: E402
from govreports.extract.crawl import CrawlEvent, CrawlResult  # noqa: E402
from govreports.extract.fetch import Fetcher  # noqa: E402
from govreports.extract.fetchlog import FetchLog  # noqa: E402
from govreports.extract.sources import Source, load_sources, select  # noqa: E402
from govreports.flows import progress, steps  # noqa: E402
from govreports.flows.config import DATA_DIR, DEFAULT_WAREHOUSE, Warehouse  # noqa: E402
from govreports.flows.parse import release_memory, tune_gc  # noqa: E402
from govreports.flows.runlock import LockHeld, RunLock, sweep  # noqa: E402
from govreports.load.lake import Lake, LakeError, StagedFile  # noqa: E402

PARSE_BATCH = 100  # pages per parse-and-load task (whole agencies) at least
# ... and at most: a large stage's batches are larger, since each task has a cost of its own in Prefect (its
# settings serialised by the flow, a client made by the process: BENCHMARKS.md, National scale)
MAX_BATCH = 500
# Reports staged before the flow merges their files (one per dataset and year) and, in a nightly run, commits
# them: a killed run loses at most this much parsing, and a year's files come in thousands of reports.
COMMIT_REPORTS = 5000
MERGE_REPORTS = 50_000  # a reparse commits once, at its end: it merges in larger steps, into fewer, fuller files
PARSE_AHEAD = 8  # batches in flight
MIN_PAGES = 200  # a smaller parse stage stays on the flow's threads: starting processes costs more than it saves
# Pages a parse process reads before the pool is started afresh: a long-lived parse process grows with the pages
# it has read (BENCHMARKS.md, National scale), so the processes are recycled, as gunicorn's max_requests does
# (Prefect's pool has no max_tasks_per_child).
RECYCLE_PAGES = 25_000
STALE_MARKER = steps.STALE_MARKER  # the database must be rebuilt (a load, or a page back at a known version)

log = logging.getLogger(__name__)


class StageFailed(RuntimeError):
    """A stage failed as a whole (no source reachable, warehouse not writable)."""


@dataclass(slots=True)
class RunSummary:  # a flow's result (as a dict), printed by the CLI and kept as a markdown and a table artifact
    flow: str
    agencies: int = 0
    discovered: int = 0
    fetched: int = 0  # new pages and files
    new_versions: int = 0
    unchanged: int = 0
    not_readable: int = 0  # attachments and image-only reports
    fetch_failed: int = 0
    capped: int = 0  # report links not fetched: past --max-reports for their agency
    parsed: int = 0
    values: int = 0
    failed_checks: int = 0
    failed_reports: int = 0  # report pages and files that yielded no report
    failures: list[str] = field(default_factory=list)
    by_agency: dict[str, dict] = field(default_factory=dict)  # the table artifact's rows (AGENCY_ROW)
    database: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.fetched + self.new_versions

    def rows(self) -> list[tuple[str, object]]:
        return [("agencies", self.agencies), ("reports discovered", self.discovered),
                ("fetched (new)", self.fetched), ("new versions", self.new_versions),
                ("unchanged", self.unchanged), ("not readable (attachments, images)", self.not_readable),
                ("fetch failures", self.fetch_failed), ("capped (--max-reports)", self.capped),
                ("parsed", self.parsed), ("failed reports", self.failed_reports), ("values", self.values),
                ("failed checks", self.failed_checks), ("seconds", round(self.seconds, 1))]

    def text(self) -> str:
        lines = [f"{self.flow}: {self.changed} changed", *(f"  {name:<36} {value}" for name, value in self.rows())]
        if self.failures:
            lines += [f"  failures ({len(self.failures)}):", *(f"    {f}" for f in self.failures[:50])]
            lines += [f"    … and {len(self.failures) - 50} more"] if len(self.failures) > 50 else []
        lines += [f"  database: {self.database}"] if self.database else []
        return "\n".join(lines)

    def markdown(self) -> str:
        out = [f"# govreports {self.flow}", "", "| | |", "|---|---|"]
        out += [f"| {name} | {value} |" for name, value in self.rows()]
        if self.failures:
            out += ["", "## Failures", ""] + [f"- {f}" for f in self.failures[:200]]
        return "\n".join(out)

    def agency(self, agency_id: str) -> dict:
        return self.by_agency.setdefault(agency_id, {**AGENCY_ROW, "agency": agency_id, "reasons": []})

    def add_failures(self, failures: list[str]) -> None:
        """Per-report failures ("agency_id url: reason"), counted for the run and for their agency."""
        self.failures += failures
        self.failed_reports += len(failures)
        for f in failures:
            row = self.agency(f.split(" ", 1)[0])
            row["failed"] += 1
            row["reasons"].append(f.split(" ", 1)[-1])

    def table(self) -> list[dict]:
        return [{**row, "reasons": "; ".join(row["reasons"])[:2000]} for _, row in sorted(self.by_agency.items())]


AGENCY_ROW = {"agency": "", "discovered": 0, "fetched": 0, "changed": 0, "failed": 0}


def _sources(sources_file: str | None, site: str | None, agencies: Sequence[str] | None = None,
             region: str | None = None) -> list[Source]:
    return select(load_sources(sources_file or str(DATA_DIR / "sources.csv"), site=site), agencies or None, region)


# Inputs hold frames and clients: hashing them for Prefect's cache would cost time for nothing; the
# real cache is the lake, keyed by each page's sha256 (steps.unseen).
@task(name="fetch", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def fetch_task(sources: list[Source], wh: Warehouse, years: list[int] | None, fetcher: dict,
               pages: queue.SimpleQueue | None = None) -> CrawlResult:
    """The run's crawl, with `fetcher` the Fetcher's options; `pages` (in the flow's process) gets the report
    pages as the fetch log takes them."""
    def agency_done(event: CrawlEvent) -> None:
        if event.kind == "done":
            progress.advance("fetch")

    # One politeness per process, whatever runs in it. Named through its module: the Dask runner pickles
    # this function by value, which would take the gates' locks along, and fails.
    with Fetcher(**fetcher, gates=fetch_module.PROCESS_GATES) as client:
        return steps.fetch(sources, wh, client, years=years, on_event=agency_done,
                           on_pages=pages.put if pages is not None else None)


@task(name="parse-and-load", cache_policy=NO_CACHE)
def parse_and_load_task(raw_root: str, lake_root: str, refs: list[steps.PageRef],
                        sources: dict[str, Source]) -> steps.LoadOutcome:
    try:
        return steps.parse_and_load(raw_root, lake_root, refs, sources)
    finally:
        if multiprocessing.parent_process() is not None:  # a parse process: its batches follow one another
            release_memory()


@task(name="refresh", cache_policy=NO_CACHE)
def refresh_task(wh: Warehouse) -> str:
    return str(steps.refresh(wh))


def parse_processes(pages: int) -> int:
    """Parse processes: GOVREPORTS_PARSE_PROCESSES, else one per core from MIN_PAGES pages on; 0 or 1: threads."""
    raw = os.environ.get("GOVREPORTS_PARSE_PROCESSES", "").strip()
    if not raw:
        return (os.cpu_count() or 1) if pages >= MIN_PAGES else 0
    if not raw.isdigit():
        raise StageFailed(f"GOVREPORTS_PARSE_PROCESSES must be a whole number, not {raw!r}")
    return int(raw) if int(raw) > 1 and pages else 0


def batch_size(pages: int, processes: int) -> int:
    """Pages per task for a stage handed `pages` at once: enough batches to keep the window full
    (PARSE_AHEAD per process), within PARSE_BATCH..MAX_BATCH."""
    return max(PARSE_BATCH, min(MAX_BATCH, pages // (PARSE_AHEAD * max(processes, 1))))


def _parse_process_start() -> None:
    """Start of a parse process: it exits when the run's process ends, even killed (a pool's worker would
    wait for work for good)."""
    parent = multiprocessing.parent_process()
    threading.Thread(target=lambda: parent.join() or os._exit(1), daemon=True, name="exit-with-run").start()
    tune_gc()


def _on_threads() -> bool:  # the flow's tasks run on threads of its own process, not on a Dask cluster
    return isinstance(getattr(FlowRunContext.get(), "task_runner", None), ThreadPoolTaskRunner)


class _ParseStage:
    """Parse and stage in batches of whole agencies (in parallel, in processes once the stage is large),
    submitted as pages come. A task hands back counts and the names of the files it staged, and a window bounds
    what is in flight. Every COMMIT_REPORTS reports the staged files are merged and committed, and the rest at
    the end; `replace_all` (reparse): merged as they come, committed once at the end as the whole lake.
    `loaded`: the report ids not to parse again (None: the lake's, read at first)."""

    def __init__(self, summary: RunSummary, wh: Warehouse, lake_root: str, sources: dict[str, Source],
                 lock: RunLock, loaded: set[str] | None = None, replace_all: bool = False) -> None:
        self.summary, self.wh, self.lake_root, self.sources, self.lock = summary, wh, lake_root, sources, lock
        self.seen = loaded
        self.replace_all = replace_all
        self.staged: list[StagedFile] = []  # merged, not committed
        self.pending: list[StagedFile] = []  # as the batches staged them
        self.pending_reports = 0
        self.stale = (wh.lock_dir / STALE_MARKER).exists()  # at the start: this run's fetch may touch it too
        self.pages = 0
        self.window: deque = deque()
        self.pool: ProcessPoolTaskRunner | None = None  # None: on the flow's threads (or its Dask cluster)
        self.runner: ProcessPoolTaskRunner | None = None  # the pool started last, closed or not
        self.pool_processes = 0
        self.pool_pages = 0  # submitted to the current pool
        self.pool_tried = False
        self.stack = contextlib.ExitStack()
        if not _on_threads():  # a Dask cluster: its workers report to this flow's API, not each to a server of
            # its own (one per worker, all on one SQLite file: BENCHMARKS.md, Dask LocalCluster)
            self.stack.enter_context(temporary_settings(
                updates={PREFECT_API_URL: str(FlowRunContext.get().client.api_url)}))
        progress.start("parse", 0)

    def __enter__(self) -> _ParseStage:
        return self

    def __exit__(self, *exc: object) -> None:
        with self.stack:
            while self.window and not exc[0]:
                self._collect()
        if not exc[0]:
            self._flush(final=True)

    def _flush(self, final: bool = False) -> None:
        """Merge what the batches staged; commit it unless this is a reparse before its end."""
        try:
            if self.pending:
                self.staged += Lake(self.lake_root).merge(self.pending)
                self.pending, self.pending_reports = [], 0
            if (final if self.replace_all else self.staged):  # a reparse commits once, even nothing: an empty lake
                # The parse cache (`seen`: the database's ids, or the lake's after an unfinished run) left out
                # what the lake holds: the commit need not read the lake's ids again.
                versions = steps.commit(self.lake_root, self.staged, replace_all=self.replace_all, known_new=True)
                log.info("committed %d lake files: versions %s", len(self.staged), versions)
                self.staged = []
            if final and not self.replace_all and (merged := steps.compact(self.lake_root)):
                log.info("merged %d small lake files", merged)
        except OSError as exc:  # a full disk or a read-only lake fails the stage as a whole
            raise StageFailed(f"cannot write the lake at {self.lake_root}: {exc}") from exc

    def add(self, refs: list[steps.PageRef]) -> None:
        if self.seen is None:
            try:  # a run killed after loading leaves the marker: then the database may lag the lake
                db = None if self.stale else self.wh.db
                self.seen = steps.loaded_ids(Lake(self.wh.lake), db)
            except OSError as exc:
                raise StageFailed(f"cannot read the lake at {self.wh.lake}: {exc}") from exc
        todo = steps.unseen(refs, self.seen)
        if not todo:
            return
        if not self.pages:
            try:
                (self.wh.lock_dir / STALE_MARKER).touch()
            except OSError as exc:
                raise StageFailed(f"warehouse {self.wh.root} not writable: {exc}") from exc
        todo = steps.with_first_seen(todo, FetchLog(self.wh.fetch_log))  # unchanged pages only: rare
        self.pages += len(todo)
        progress.advance("parse", 0, more=len(todo))  # the total grows with the crawl
        n = parse_processes(self.pages)
        if not self.pool_tried and n > 1 and _on_threads():  # a large stage: Prefect's process pool (not on Dask)
            self.pool_tried = True
            # The processes report to the flow's API: with no API URL set, each would start a Prefect server.
            api = str(FlowRunContext.get().client.api_url)
            self.stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api}))
            self.stack.callback(self._close_pool)
            self.pool_processes = n
            self._open_pool()
        for batch in steps.agency_batches(todo, batch_size(len(todo), n)):
            self._submit(batch)

    def _open_pool(self) -> None:
        self.runner = ProcessPoolTaskRunner(max_workers=self.pool_processes, initializer=_parse_process_start)
        self.pool = self.runner.__enter__()
        self.pool_pages = 0

    def _close_pool(self) -> None:
        runner, self.runner, self.pool = self.runner, None, None
        if runner is not None:
            runner.__exit__(None, None, None)

    def _submit(self, batch: list[steps.PageRef]) -> None:
        if self.pool is not None and self.pool_pages >= RECYCLE_PAGES * self.pool_processes:
            while self.window:  # what the old processes hold is collected before they go
                self._collect()
            if self.pool is not None:  # not lost meanwhile (a process died: the rest is on threads)
                log.info("parse processes recycled after %d pages", self.pool_pages)
                self._close_pool()
                self._open_pool()
        while len(self.window) >= PARSE_AHEAD:
            self._collect()
        # Only the batch's own agencies: Prefect walks every task parameter (looking for futures).
        params = {"raw_root": self.wh.raw, "lake_root": self.lake_root, "refs": batch,
                  "sources": steps.sources_for(batch, self.sources)}
        if self.pool is not None:
            future = self.pool.submit(parse_and_load_task, params)
            self.pool_pages += len(batch)
        else:
            future = parse_and_load_task.submit(**params)
        self.window.append((future, batch))

    def _collect(self) -> None:
        future, batch = self.window.popleft()
        try:
            outcome = future.result()
        except BrokenProcessPool:
            # A parse process died (the OOM killer, a crash in a C library): the pool is gone. What it
            # had not finished is parsed on the flow's threads; what the dead process was writing is
            # left for the next run's sweep.
            log.warning("a parse process died; parsing the rest of the stage in the flow's threads")
            self.lock.keep_for_sweep()
            self.pool = None
            again = [batch, *(b for _, b in self.window)]
            self.window.clear()
            for b in again:
                self._submit(b)
            return
        except OSError as exc:  # a full disk or a read-only lake fails the stage as a whole
            raise StageFailed(f"cannot write the lake at {self.lake_root}: {exc}") from exc
        progress.advance("parse", len(batch))
        self.pending += outcome.staged
        self.pending_reports += outcome.parsed
        if self.pending_reports >= (MERGE_REPORTS if self.replace_all else COMMIT_REPORTS):
            self._flush()
        for name in ("parsed", "values", "failed_checks"):
            setattr(self.summary, name, getattr(self.summary, name) + getattr(outcome, name))
        self.summary.add_failures(outcome.failures)
        log.info("parsed and loaded %d pages of %s: %d values, %d failed", outcome.parsed,
                 ", ".join(sorted({r.agency_id for r in batch})), outcome.values, len(outcome.failures))


def _finish(summary: RunSummary, wh: Warehouse, started: float, always_refresh: bool = False) -> RunSummary:
    marker = wh.lock_dir / STALE_MARKER
    try:
        if always_refresh or summary.parsed or marker.exists() or not wh.db.exists():
            progress.start("refresh", 1)
            summary.database = refresh_task(wh)
            log.info("database rebuilt: %s", summary.database)
            progress.advance("refresh")
            marker.unlink(missing_ok=True)
        else:  # nothing loaded: the database already says it all (its fetch_log view reads the log live)
            summary.database = str(wh.db.resolve())
    except OSError as exc:
        raise StageFailed(f"cannot write the warehouse database {wh.db}: {exc}") from exc
    summary.seconds = time.perf_counter() - started
    create_markdown_artifact(summary.markdown(), key=f"govreports-{summary.flow}",
                             description=f"govreports {summary.flow} run summary")
    create_table_artifact(summary.table(), key=f"govreports-{summary.flow}-agencies",
                          description=f"govreports {summary.flow}: per agency, what was discovered, fetched, "
                                      "changed and failed, with the reasons")
    log.info("%s: %d changed, %d parsed, %d failed reports, %d fetch failures", summary.flow, summary.changed,
             summary.parsed, summary.failed_reports, summary.fetch_failed)
    return summary


def _locked(wh: Warehouse) -> RunLock:
    """Take the warehouse's lock and sweep what a killed run left; a held lock fails the stage."""
    lock = RunLock(wh.lock_dir)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise StageFailed(str(exc)) from exc
    except OSError as exc:
        raise StageFailed(f"warehouse {wh.root} not writable: {exc}") from exc
    sweep(wh.lock_dir, deep=lock.needs_sweep)
    if lock.needs_sweep:  # the last run died: the files it staged and never committed go too
        try:
            Lake(wh.lake).sweep()
        except (OSError, LakeError) as exc:  # the lake's own errors are the run's, raised where it is read
            log.warning("could not sweep the lake at %s: %s", wh.lake, exc)
    return lock


# The run summary's counts: sums of the crawl's per-agency counts.
_CRAWL_COUNTS = {"discovered": "discovered", "fetched": "fetched", "new_versions": "new_versions",
                 "unchanged": "unchanged", "not_readable": "not_readable", "fetch_failed": "failed",
                 "capped": "capped"}


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=True)
def nightly(sources_file: str | None = None, warehouse: str = DEFAULT_WAREHOUSE, site: str | None = None,
            agencies: list[str] | None = None, region: str | None = None, allow_loopback: bool = False,
            delay: float = 0.5, timeout: float = 20.0, proxy: str | None = None, trust_env: bool = False,
            years: list[int] | None = None, max_reports: int = 500, max_file_bytes: int = 50 * 2**20) -> dict:
    """Discover → fetch what changed → parse → check → load → refresh the views, for every agency (as
    `backfill`: for a chosen slice, some years, some agencies or one region). A report file (PDF, Word) may be
    `max_file_bytes` long, a page the fetcher's 20 MB."""
    started = time.perf_counter()
    sources, wh = _sources(sources_file, site, agencies, region), Warehouse(warehouse)
    fetcher = {"allow_loopback": allow_loopback, "delay": delay, "timeout": timeout, "proxy": proxy,
               "trust_env": trust_env, "max_reports": max_reports, "max_file_bytes": max_file_bytes}
    summary = RunSummary(flow=FlowRunContext.get().flow.name, agencies=len(sources))  # nightly or backfill
    if not sources:
        raise StageFailed("no agency selected: check --agency / --region and the sources file")
    with _locked(wh) as lock:
        with _ParseStage(summary, wh, wh.lake, {s.agency_id: s for s in sources}, lock) as stage:
            progress.start("fetch", len(sources))
            log.info("%s: fetching from %d agencies into %s", summary.flow, len(sources), wh.root)
            # One fetch task: the crawl's threads work the hosts. In this process it hands pages on as they reach
            # the fetch log, parsed while the crawl goes on; on a Dask cluster they come with its result.
            pages = queue.SimpleQueue() if _on_threads() else None
            fetch = fetch_task.submit(sources, wh, years, fetcher, pages)
            if pages is not None:
                fetch.add_done_callback(lambda _future: pages.put(None))
                try:
                    for refs in iter(pages.get, None):
                        stage.add(refs)
                finally:
                    fetch.wait()  # the crawl writes to the warehouse: the lock stays taken until it ends
            result = fetch.result()
            for total, count in _CRAWL_COUNTS.items():
                setattr(summary, total, sum(getattr(s, count) for s in result.agencies.values()))
            summary.failures += [f"{s.agency_id}: {e}" for s in result.agencies.values() for e in s.errors]
            for s in result.agencies.values():
                row = summary.agency(s.agency_id)
                row.update(discovered=s.discovered, fetched=s.fetched, changed=s.fetched + s.new_versions,
                           failed=row["failed"] + s.failed, reasons=[*s.errors, *row["reasons"]])
                log.info("%s: %d discovered, %d fetched, %d new versions, %d unchanged, %d failed", s.agency_id,
                         s.discovered, s.fetched, s.new_versions, s.unchanged, s.failed)
            if result.all_failed:
                raise StageFailed("every agency failed to fetch: " + "; ".join(summary.failures[:5]))
            stage.add(steps.refs_from_crawl([result]))  # what the log did not hand on (not written, or on Dask)
            FetchLog(wh.fetch_log).compact()  # one file per write would otherwise pile up night after night
            del result
        return asdict(_finish(summary, wh, started))


backfill = nightly.with_options(name="backfill")


@flow(name="reparse", task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=True)
def reparse(warehouse: str = DEFAULT_WAREHOUSE, sources_file: str | None = None,
            site: str | None = None) -> dict:
    """Rebuild facts, reports and checks from the raw zone and the fetch log, with no network (after a
    parser upgrade). The new rows become each lake table's next version in one commit at the end."""
    started = time.perf_counter()
    wh = Warehouse(warehouse)
    try:
        sources = {s.agency_id: s for s in _sources(sources_file, site)}
    except ValueError:
        sources = {}  # the registry is optional here: names then come from the pages
    with _locked(wh) as lock:
        summary = RunSummary(flow="reparse")
        lake_dir = wh.local_root / "parquet" if wh.local_root is not None else None
        if lake_dir is not None and Lake(str(lake_dir)).older_layout():  # kept beside, never deleted
            aside = lake_dir.with_name(f"{lake_dir.name}.older-layout-{time.strftime('%Y%m%d%H%M%S')}")
            lake_dir.rename(aside)
            log.warning("the lake of an older version moved to %s; the new lake is built from the raw zone", aside)
        # The new rows become the lake's next version in one commit per table, at the end: until then readers
        # see the old version, and the old versions stay in the lake's history. The fetch log's versions come a
        # few agencies at a time, parsed as they come.
        fetch_log = FetchLog(wh.fetch_log)
        fetch_log.compact()  # as a nightly does after its crawl: a log of many small files is slow to read
        with _ParseStage(summary, wh, wh.lake, sources, lock, loaded=set(), replace_all=True) as stage:
            for refs in steps.ref_chunks_from_log(fetch_log):
                summary.discovered += len(refs)
                for ref in refs:
                    summary.agency(ref.agency_id)["discovered"] += 1
                stage.add(refs)
        summary.agencies = len({a for a, row in summary.by_agency.items() if row["discovered"]})
        log.info("reparsed %d stored pages of %d agencies", summary.discovered, summary.agencies)
        del stage
        return asdict(_finish(summary, wh, started, always_refresh=True))

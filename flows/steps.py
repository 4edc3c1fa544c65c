"""The pipeline's stages as plain functions over extract, transform and load; flows/pipeline.py wraps
them in tasks. A page is parsed once per version: the parse stage skips every page whose report_id (its
sha256) the lake already holds, so a rerun after a crash picks up what was fetched but never loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from govreports.extract.crawl import CrawlEvent, CrawlResult, crawl
from govreports.extract.discover import FETCHED_KINDS
from govreports.extract.fetch import Fetcher
from govreports.extract.fetchlog import FetchLog
from govreports.extract.rawzone import RawZone
from govreports.extract.sources import Source
from govreports.flows.config import Warehouse
from govreports.flows.faults import checkpoint
from govreports.flows.parse import parse_report
from govreports.load.lake import Lake, ReportBundle, StagedFile
from govreports.load.warehouse import build, loaded_report_ids
from govreports.transform.report import ParseFailure, report_id_for

log = logging.getLogger(__name__)
# In the warehouse's lock directory from the first load, or the first new version of a known page, until
# the database is rebuilt: a run killed in between leaves it, and the next run then rebuilds the database
# even when it loads nothing itself.
STALE_MARKER = ".refresh-needed"


@dataclass(frozen=True, slots=True)
class PageRef:
    """One stored version of a report page or file, to be parsed."""

    agency_id: str
    url: str
    sha256: str
    year: int | None  # from the listing link's text, when it says
    fetched_at: pd.Timestamp | None  # when this version was first fetched
    declared_charset: str | None = None
    link_agency: str | None = None  # the agency the listing's link text names, when it names one
    linked_from: str | None = None  # a file's report page (the report row's source_page)


@dataclass(slots=True)
class ParseOutcome:
    bundles: list[ReportBundle] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "agency_id url: reason"


class _HandingOnLog(FetchLog):
    """The fetch log, handing on the report pages and files of each write: the crawl writes an agency's records
    once it is done with the agency, so its pages can be parsed while the crawl goes on."""

    def __init__(self, root: str, on_pages: Callable[[list[PageRef]], None]) -> None:
        super().__init__(root)
        self.on_pages = on_pages

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        super().append(records)
        # A new page or version was first fetched now; an unchanged one's first time is in the log.
        refs = [PageRef(r["agency_id"], r["url"], r["sha256"], r.get("year"),
                        pd.Timestamp(r["fetched_at"]) if r["outcome"] in ("new", "new_version") else None,
                        r.get("declared_charset"), r.get("link_agency"), r.get("linked_from"))
                for r in records if r.get("kind") in FETCHED_KINDS and r.get("sha256") and r.get("outcome") in _STORED]
        if refs:
            self.on_pages(refs)


_STORED = ("new", "new_version", "unchanged", "not_modified")  # fetch log outcomes of a page in the raw zone


def fetch(sources: Sequence[Source], wh: Warehouse, fetcher: Fetcher, years: Iterable[int] | None = None,
          on_event: Callable[[CrawlEvent], None] | None = None,
          on_pages: Callable[[list[PageRef]], None] | None = None) -> CrawlResult:
    """Discover and fetch: new and changed pages go to the raw zone, every attempt to the fetch log.
    `on_pages` gets the report pages (new, changed or unchanged) as their records reach the log."""

    def event(e: CrawlEvent) -> None:
        if e.kind == "page" and e.outcome in ("new", "new_version"):
            if e.outcome == "new_version":  # perhaps a version seen before, now current again: no parse says so
                (wh.lock_dir / STALE_MARKER).touch()
            checkpoint("fetch")
        if on_event is not None:
            on_event(e)

    log = _HandingOnLog(wh.fetch_log, on_pages) if on_pages else FetchLog(wh.fetch_log)
    return crawl(sources, RawZone(wh.raw), log, fetcher, years=set(years) if years else None, on_event=event)


def refs_from_crawl(results: Iterable[CrawlResult]) -> list[PageRef]:
    """Every report page and file the crawls saw, as parse candidates (their first fetch: `with_first_seen`)."""
    return [PageRef(p.agency_id, p.url, p.sha256, p.year, None, p.declared_charset, p.link_agency, p.linked_from)
            for result in results for p in result.pages]


def with_first_seen(refs: list[PageRef], log: FetchLog) -> list[PageRef]:
    """The refs with the time their version was first fetched, for those that lack it (one read of the log)."""
    if all(ref.fetched_at is not None for ref in refs):
        return refs
    v = log.versions()
    seen = {(u, s): pd.Timestamp(t) for u, s, t in zip(v["url"], v["sha256"], v["first_seen"], strict=True)}
    return [ref if ref.fetched_at is not None else replace(ref, fetched_at=seen.get((ref.url, ref.sha256)))
            for ref in refs]


REF_CHUNK = 20_000  # page versions read from the fetch log at a time by a reparse


def refs_from_log(log: FetchLog) -> list[PageRef]:
    """Every stored version of every report page and file, from the fetch log alone (no network)."""
    return [ref for chunk in ref_chunks_from_log(log) for ref in chunk]


def ref_chunks_from_log(log: FetchLog, size: int = REF_CHUNK) -> Iterator[list[PageRef]]:
    """`refs_from_log` as it is read, in lists of about `size` refs holding whole agencies: a reparse of a
    million versions holds one list at a time, not a million refs."""
    held: list[PageRef] = []
    for versions in log.versions_by_agency(size):
        versions = versions[versions["kind"].fillna("report").isin(FETCHED_KINDS)]
        held += [PageRef(row.agency_id, row.url, row.sha256, None if pd.isna(row.year) else int(row.year),
                         pd.Timestamp(row.first_seen),
                         link_agency=None if pd.isna(row.link_agency) else row.link_agency,
                         linked_from=None if pd.isna(row.linked_from) else row.linked_from)
                 for row in versions.itertuples(index=False)]
        if len(held) >= size:  # the last agency may go on in the next frame: it waits for it
            cut = len(held)
            while cut and held[cut - 1].agency_id == held[-1].agency_id:
                cut -= 1
            if cut:
                yield held[:cut]
                held = held[cut:]
    if held:
        yield held


def loaded_ids(lake: Lake, db: Path | None = None) -> set[str]:
    """The report ids the lake holds. `db`: the warehouse database, when nothing was loaded since it was
    last rebuilt from this lake; it answers faster than the lake's files."""
    loaded = loaded_report_ids(db, lake) if db is not None else None
    return set(lake.report_ids() if loaded is None else loaded)


def unseen(refs: Iterable[PageRef], seen: set[str]) -> list[PageRef]:
    """The parse cache: the refs whose version (report id) is not in `seen`, each once; `seen` takes them in."""
    out = []
    for ref in refs:
        if (rid := report_id_for(ref.sha256)) not in seen:
            seen.add(rid)
            out.append(ref)
    return out


def not_loaded(refs: Iterable[PageRef], lake: Lake, db: Path | None = None) -> list[PageRef]:
    return unseen(refs, loaded_ids(lake, db))


def _report_row(ref: PageRef, source: Source | None, loaded_at: pd.Timestamp) -> dict:
    region = source.region if source else None
    return {
        "report_id": report_id_for(ref.sha256), "agency_id": ref.agency_id, "agency": source.name if source else None,
        "region": region, "parent_region": region.rsplit("/", 1)[0] if region and "/" in region else region,
        "level": source.level if source else None, "kind": source.kind if source else None, "year": ref.year,
        "url": ref.url, "content_sha256": ref.sha256, "fetched_at": ref.fetched_at, "loaded_at": loaded_at,
        "source_page": ref.linked_from,
    }


def _failed(report: dict, failure: str) -> ReportBundle:
    report.update(status="failed", failure=failure, n_values=0, n_unparsed=0, n_checks_failed=0,
                  n_checks_not_assessable=0, sections="")
    return ReportBundle(report, [], [])


def parse_page(data: bytes, ref: PageRef, source: Source | None, loaded_at: pd.Timestamp) -> ReportBundle:
    """One page version -> its bundle. A page that yields no report is a report row with status failed."""
    report = _report_row(ref, source, loaded_at)
    try:
        parsed = parse_report(data, source=ref.url, agency=source.name if source else None,
                              http_charset=ref.declared_charset, agency_id=ref.agency_id,
                              link_agency=ref.link_agency, link_year=ref.year)
    except ParseFailure as exc:
        return _failed(report, str(exc))
    except Exception as exc:  # a parser bug on one page fails that page, never the batch or the run
        log.exception("parser error on %s (%s)", ref.url, ref.sha256)
        return _failed(report, f"parser error: {type(exc).__name__}: {str(exc)[:200]}")
    meta, facts, checks = parsed.meta, parsed.fact_rows, parsed.check_rows
    sections = {f.section for f in facts}
    statuses = [c.status for c in checks]
    report.update(
        agency=meta.agency, year=meta.year, template=meta.template, title=meta.title, form=meta.kind,
        published=meta.published, status="truncated" if meta.truncated else "parsed", failure=None,
        n_values=len(facts), n_unparsed=sum(f.value_status == "unparsed" for f in facts),
        n_checks_failed=statuses.count("fail"), n_checks_not_assessable=statuses.count("not_assessable"),
        sections="".join(s for s in "二三四" if s in sections), problems="\n".join(meta.problems) or None,
    )
    return ReportBundle(report, facts, checks)


def parse_pages(raw_root: str, refs: Sequence[PageRef], sources: Mapping[str, Source]) -> ParseOutcome:
    """Parse a batch of stored pages. A page that cannot be read is recorded, never raised."""
    raw = RawZone(raw_root)
    loaded_at = pd.Timestamp.now(tz="UTC")
    out = ParseOutcome()
    for ref in refs:
        try:
            data = raw.get(ref.sha256)
        except (OSError, ValueError) as exc:
            out.failures.append(f"{ref.agency_id} {ref.url}: raw page unreadable: {exc}")
            continue
        bundle = parse_page(data, ref, sources.get(ref.agency_id), loaded_at)
        checkpoint("parse")
        if bundle.report["status"] == "failed":
            out.failures.append(f"{ref.agency_id} {ref.url}: {bundle.report['failure']}")
        out.bundles.append(bundle)
    return out


def load(lake_root: str, bundles: Sequence[ReportBundle]) -> list[StagedFile]:
    """Write a batch's rows to the lake's files, not yet committed (`commit` makes them visible)."""
    return Lake(lake_root).stage(bundles, on_file=lambda _path: checkpoint("write"))[0]


def commit(lake_root: str, staged: Sequence[StagedFile], replace_all: bool = False,
           known_new: bool = False) -> dict[str, int]:
    """Merge staged files into one per dataset and year, and commit them: the rows become visible. `known_new`:
    the parse cache already left out every report id the lake holds (so no file of the lake is read)."""
    lake = Lake(lake_root)
    return lake.commit(lake.merge(staged), replace_all=replace_all, known_new=known_new,
                       on_commit=lambda _name: checkpoint("write"))


def compact(lake_root: str) -> int:
    """Merge each year's small loads once they pile up (Lake.compact): the nightly commits' files stay few."""
    return Lake(lake_root).compact(on_commit=lambda _name: checkpoint("write"))


def refresh(wh: Warehouse, sources: Iterable[Source] | None = None) -> Path:
    """Rebuild the analysts' database from the lake (atomically replacing the old file), with the current
    version of each report decided from when the fetch log last saw each version (the attempts logged since
    the database was built, added to the sightings it holds). `sources`: the run's
    registry, the agencies `coverage` lists (without it, the agencies the lake holds)."""
    local = wh.local_root
    has_log = local is not None and any((local / "fetch_log").glob("*.parquet"))
    log_glob = str((local / "fetch_log").resolve() / "*.parquet") if has_log else None
    registry = None if sources is None else [
        {"agency_id": s.agency_id, "agency": s.name, "region": s.region, "level": s.level, "kind": s.kind}
        for s in sources]
    return build(Lake(wh.lake), wh.db, fetch_log_glob=log_glob, on_step=lambda _name: checkpoint("refresh"),
                 sightings=FetchLog(wh.fetch_log).sightings, sources=registry)


@dataclass(slots=True)
class LoadOutcome:
    """What a parse-and-load batch reports back: counts and the files it staged, not the data (nothing big
    crosses a task)."""

    parsed: int = 0
    values: int = 0
    failed_checks: int = 0
    failures: list[str] = field(default_factory=list)
    staged: list[StagedFile] = field(default_factory=list)


def parse_and_load(raw_root: str, lake_root: str, refs: Sequence[PageRef],
                   sources: Mapping[str, Source]) -> LoadOutcome:
    """Parse a batch of stored pages and stage its rows in the lake (files of their own: batches may run at
    once); the flow commits what its batches staged."""
    outcome = parse_pages(raw_root, refs, sources)
    bundles = outcome.bundles
    staged = load(lake_root, bundles)
    return LoadOutcome(len(bundles), sum(len(b.fact_rows) for b in bundles),
                       sum(int(b.report.get("n_checks_failed") or 0) for b in bundles), outcome.failures, staged)


def agency_batches(refs: Sequence[PageRef], size: int) -> list[list[PageRef]]:
    """Batches of about `size` pages holding whole agencies: a lake partition is (year, agency), so
    two batches never write the same partition, whatever year a page turns out to report on."""
    by_agency: dict[str, list[PageRef]] = {}
    for ref in refs:
        by_agency.setdefault(ref.agency_id, []).append(ref)
    batches: list[list[PageRef]] = [[]]
    for pages in by_agency.values():
        if batches[-1] and len(batches[-1]) + len(pages) > size:
            batches.append([])
        batches[-1].extend(pages)
    return [b for b in batches if b]


def sources_for(refs: Iterable[PageRef], sources: Mapping[str, Source]) -> dict[str, Source]:
    """The registry entries of these pages' agencies: what a batch carries to its task or worker
    (Prefect walks every task parameter, and a worker gets it pickled)."""
    return {ref.agency_id: sources[ref.agency_id] for ref in refs if ref.agency_id in sources}

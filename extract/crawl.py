"""The crawl: discovery -> fetch -> raw zone -> fetch log, for many agencies at once.

Each agency runs in its own worker; politeness (per-host limits, delays, robots.txt) is the
`Fetcher`'s job, so agencies on one host still take turns. Report pages are fetched conditionally
against the fetch log's last success and compared by sha256, so a run over unchanged sites
downloads and stores nothing new. A report page's links to its report as a file (PDF, Word, WPS) are
fetched after it, on the same terms, counted against the same cap, and logged with the page that linked
them. A failure inside one agency is recorded and never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any, Literal
from urllib.parse import urlsplit

from govreports.extract.decode import DecodeError, decode
from govreports.extract.discover import FETCHED_KINDS, Link, discover, may_link_files, report_files
from govreports.extract.fetch import Fetcher, FetchResult
from govreports.extract.fetchlog import FetchLog
from govreports.extract.rawzone import RawZone
from govreports.extract.sources import Source

__all__ = ["AgencySummary", "CrawlEvent", "CrawlResult", "CrawledPage", "crawl"]

_NOT_READABLE = {"attachment": "attachment", "image": "image_only"}  # link kind -> log outcome
# A link's outcome -> the AgencySummary count it adds to.
_COUNTED = {"new": "fetched", "new_version": "new_versions", "unchanged": "unchanged", "failed": "failed",
            "refused": "failed", "attachment": "not_readable", "image_only": "not_readable"}
_RESULT_FIELDS = ("final_url", "status", "etag", "last_modified", "sha256", "error", "declared_charset")
LOG_EVERY_AGENCIES = 64  # fetch log records written together (see _LogWriter)
LOG_MAX_AGE_S = 30.0
MAX_THREADS = 64  # crawl threads mostly wait (on a server or on a host's delay)


@dataclass(frozen=True, slots=True)
class CrawlEvent:
    """Progress of one agency: "start", a "page" seen (its fetch log outcome: new, new_version, unchanged,
    failed, refused, attachment, image_only), an "error" (a listing or the whole agency), "done" (last)."""

    agency_id: str
    kind: Literal["start", "page", "error", "done"]
    outcome: str | None = None
    url: str | None = None
    detail: str | None = None

    def __str__(self) -> str:
        return ": ".join(str(part) for part in (self.outcome or self.kind, self.url, self.detail) if part)


OnEvent = Callable[[CrawlEvent], None]


@dataclass(slots=True)
class CrawledPage:
    """A report page or file whose bytes are in the raw zone."""

    agency_id: str
    url: str
    year: int | None
    sha256: str
    status: str  # new | new_version | unchanged
    declared_charset: str | None  # the HTTP header's charset, for extract.decode
    link_text: str
    link_agency: str | None = None  # the agency the link's text names
    kind: str = "report"  # report (a page) | file (PDF, Word, WPS)
    linked_from: str | None = None  # a file's report page; None for a listing's links


@dataclass(slots=True)
class AgencySummary:
    """Counts per agency; fetched + new_versions + unchanged + failed + not_readable + capped == discovered."""

    agency_id: str
    discovered: int = 0  # links found (reports, files, attachments, images), the files report pages link too
    fetched: int = 0  # report pages and files stored for the first time (new)
    new_versions: int = 0  # report pages and files whose body changed since the last run
    unchanged: int = 0  # 304, or 200 with the same sha256 as before
    failed: int = 0  # report pages and files that failed or were refused
    not_readable: int = 0  # attachments and images: recorded, not fetched
    capped: int = 0  # report and file links beyond the fetcher's max_reports: not fetched, not recorded
    errors: list[str] = field(default_factory=list)

    @property
    def failed_entirely(self) -> bool:
        """Errors, and no report page in the raw zone from this run."""
        return bool(self.errors) and self.fetched + self.new_versions + self.unchanged == 0


@dataclass(slots=True)
class CrawlResult:
    pages: list[CrawledPage]
    agencies: dict[str, AgencySummary]

    @property
    def changed(self) -> int:
        """Report pages stored new or as a new version in this run."""
        return sum(1 for p in self.pages if p.status in ("new", "new_version"))

    @property
    def all_failed(self) -> bool:
        """Every agency failed entirely (an empty crawl has not failed)."""
        return bool(self.agencies) and all(s.failed_entirely for s in self.agencies.values())


class _LogWriter:
    """The fetch log records of finished agencies, appended together (one Parquet file, not one per
    agency): every `every` agencies, when the oldest has waited `max_age` seconds, and at the end of the
    crawl. A run killed in between loses the records of the agencies not yet written; their pages are
    in the raw zone and the next run fetches them again."""

    def __init__(self, log: FetchLog, every: int = LOG_EVERY_AGENCIES, max_age: float = LOG_MAX_AGE_S) -> None:
        self.log, self.every, self.max_age = log, max(1, every), max_age
        self._lock = threading.Lock()
        self._pending: list[tuple[AgencySummary, list[dict[str, Any]]]] = []
        self._since = 0.0

    def add(self, summary: AgencySummary, records: list[dict[str, Any]]) -> None:
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append((summary, records))
            if len(self._pending) < self.every and time.monotonic() - self._since < self.max_age:
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            self.log.append([r for _, records in batch for r in records])
        except Exception:
            for summary, records in batch:  # one agency's bad record must not cost the others their log
                try:
                    self.log.append(records)
                except Exception as exc:
                    summary.errors.append(f"fetch log not written: {type(exc).__name__}: {exc}")


class _AgencyCrawl:
    """The work of one agency; its records go to the crawl's log writer at the end."""

    def __init__(self, source: Source, raw: RawZone, log: FetchLog, fetcher: Fetcher, on_event: OnEvent | None,
                 writer: _LogWriter) -> None:
        self.source, self.raw, self.log, self.fetcher, self.on_event, self.writer = (
            source, raw, log, fetcher, on_event, writer)
        self.summary = AgencySummary(source.agency_id)
        self.pages: list[CrawledPage] = []
        self.records: list[dict[str, Any]] = []
        self.queue: deque[Link] = deque()  # links to visit: the listing's, then the files their pages link
        self.seen: set[str] = set()
        self.left = fetcher.max_reports  # report pages and files still to fetch under the cap

    def event(self, kind: Literal["start", "page", "error", "done"], outcome: str | None = None,
              url: str | None = None, detail: str | None = None) -> None:
        if self.on_event is not None:
            with suppress(Exception):  # a broken progress display must not fail the crawl
                self.on_event(CrawlEvent(self.source.agency_id, kind, outcome, url, detail))

    def record(self, url: str, kind: str, outcome: str, r: FetchResult | None = None, **extra: Any) -> None:
        rec: dict[str, Any] = {"url": url, "agency_id": self.source.agency_id, "kind": kind, "outcome": outcome,
                               "fetched_at": datetime.now(UTC)}
        if r is not None:
            rec |= {name: getattr(r, name) for name in _RESULT_FIELDS}
            rec["bytes"] = len(r.body) if r.body is not None else None
        self.records.append(rec | extra)

    def store(self, url: str, r: FetchResult, kind: str, **extra: Any) -> str:
        """Put a fetched body in the raw zone, log it, and say whether it is new, a new version or unchanged."""
        assert r.body is not None
        sha, _ = self.raw.put(r.body)
        prev_sha = (self.log.last_success(url) or {}).get("sha256")
        status = "new" if not prev_sha else ("unchanged" if prev_sha == sha else "new_version")
        self.record(url, kind, status, r, sha256=sha, **extra)
        return status

    # -- listing pages ----------------------------------------------------------------------------

    def get_text(self, url: str) -> str | None:
        """A listing page, fetched whole, stored and decoded. Never asked for conditionally: a listing whose
        ETag or Last-Modified does not change with its links (CMS pages regenerated in place) would hide
        new reports for good, where a stale validator on a report page only delays a revision."""
        r = self.fetcher.get(url, allowed_hosts=self.source.hosts)
        if r.outcome != "fetched" or r.body is None:
            self.record(url, "listing", "refused" if r.outcome == "refused" else "failed", r)
            self.summary.errors.append(f"listing {url}: {r.error or r.outcome}")
            self.event("error", "listing failed", url, r.error or r.outcome)
            return None
        try:
            self.store(url, r, "listing", year=None)
        except Exception as exc:  # keeping the listing is provenance; its links are still worth following
            message = f"{type(exc).__name__}: {exc}"
            self.record(url, "listing", "failed", r, error=f"not stored: {message}", sha256=None)
            self.summary.errors.append(f"listing {url}: not stored: {message}")
        try:
            return decode(r.body, http_charset=r.declared_charset).text
        except DecodeError as exc:
            self.summary.errors.append(f"listing {url}: {exc}")
            return None

    # -- report pages -----------------------------------------------------------------------------

    def visit(self, link: Link) -> str:
        """Record or fetch one link; return its outcome (one of _COUNTED)."""
        about = {"year": link.year, "link_agency": link.agency, "linked_from": link.linked_from}
        if link.kind not in FETCHED_KINDS:
            outcome = _NOT_READABLE[link.kind]
            self.record(link.url, link.kind, outcome, **about)
            return outcome
        prev = self.log.last_success(link.url) or {}
        prev_sha = prev.get("sha256")
        # Conditional only when the body it would stand for is really in the raw zone.
        conditional = bool(prev_sha and self.raw.has(prev_sha))
        etag, last_modified = (prev.get("etag"), prev.get("last_modified")) if conditional else (None, None)
        get = {"allowed_hosts": self.source.hosts, "file": link.kind == "file"}
        r = self.fetcher.get(link.url, etag=etag, last_modified=last_modified, **get)
        if r.outcome == "fetched" and not (r.body or b"").strip():
            # Never a version of the report: the last one fetched stays the latest success in the log.
            r.outcome, r.error, r.body, r.sha256 = "failed", "empty body", None, None
        if r.outcome == "not_modified" and not conditional:
            r = self.fetcher.get(link.url, **get)  # a 304 we did not ask for: once more
            if r.outcome == "not_modified":
                r.outcome, r.error = "failed", "HTTP 304 to an unconditional request"
        if r.outcome == "not_modified":
            status, sha, charset = "unchanged", prev_sha, prev.get("declared_charset")
            self.record(link.url, link.kind, "not_modified", r, **about, sha256=sha, etag=r.etag or etag,
                        last_modified=r.last_modified or last_modified, declared_charset=charset)
        elif r.outcome != "fetched" or r.body is None:
            status = "refused" if r.outcome == "refused" else "failed"
            self.record(link.url, link.kind, status, r, **about)
            self.summary.errors.append(f"{link.url}: {r.error or r.outcome}")
            return status
        else:
            status, sha, charset = self.store(link.url, r, link.kind, **about), r.sha256, r.declared_charset
        assert sha is not None
        self.pages.append(CrawledPage(self.source.agency_id, link.url, link.year, sha, status, charset,
                                      link.text, link.agency, link.kind, link.linked_from))
        if link.kind == "report":
            self.follow_files(link, r.body, sha, charset)
        return status

    def follow_files(self, page: Link, body: bytes | None, sha: str, charset: str | None) -> None:
        """Queue the page's links to its report as a file, each counted as discovered and against the cap.
        An unchanged page is read from the raw zone: its files may have changed all the same."""
        try:
            data = body if body is not None else self.raw.get(sha)
            if not may_link_files(data):
                return
            text = decode(data, http_charset=charset).text
        except (DecodeError, OSError, ValueError):
            return  # not a page that can be read: its parse records why
        for url, label in report_files(text, page.url, page.text or None):
            if url in self.seen or not self.source.allows(url):
                continue
            self.seen.add(url)
            self.summary.discovered += 1
            if self.left <= 0:
                self.summary.capped += 1
                continue
            self.left -= 1
            self.queue.append(Link(url, label, self.source.agency_id, page.year, "file", page.listing_url,
                                   page.agency, page.url))

    def capped(self, links: list[Link]) -> list[Link]:
        """At most `max_reports` report and file links, the likeliest reports first: the registry's own report
        URLs, then the newest years, then links of no known year, each in listing order. What the cap leaves
        is for the files that report pages link."""
        reports = [link for link in links if link.kind in FETCHED_KINDS]
        cap = self.fetcher.max_reports
        self.left = max(0, cap - len(reports))
        if len(reports) <= cap:
            return links
        kept = set(sorted(reports, key=lambda link: (link.listing_url != "", -(link.year or 0)))[:cap])
        self.summary.capped = len(reports) - cap
        message = f"capped at {cap} of {len(reports)} report links (--max-reports), newest kept"
        self.summary.errors.append(message)
        self.event("error", "capped", detail=message)
        return [link for link in links if link.kind not in FETCHED_KINDS or link in kept]

    # -- the agency -------------------------------------------------------------------------------

    @property
    def first_url(self) -> str | None:
        return next(iter(self.source.listing_urls + self.source.report_urls), None)

    def run(self, years: Collection[int] | None) -> None:
        first = self.first_url
        # The host's pages are worked through by as many threads as it has request slots.
        with self.fetcher.lane(first) if first else nullcontext():
            try:
                self.event("start")
                links = discover(self.source, self.get_text, years=years)
                self.summary.discovered = len(links)
                self.seen = {link.url for link in links}
                self.queue.extend(self.capped(links))
                while self.queue:
                    link = self.queue.popleft()
                    try:
                        outcome = self.visit(link)
                    except Exception as exc:  # e.g. the raw zone's disk: this page fails, the next may not
                        outcome, message = "failed", f"{type(exc).__name__}: {exc}"
                        self.record(link.url, link.kind, "failed", year=link.year, error=message,
                                    linked_from=link.linked_from)
                        self.summary.errors.append(f"{link.url}: {message}")
                    counter = _COUNTED[outcome]
                    setattr(self.summary, counter, getattr(self.summary, counter) + 1)
                    self.event("page", outcome, link.url)
            except Exception as exc:  # one agency's bug or bad data must not stop the others
                message = f"{type(exc).__name__}: {exc}"
                self.summary.errors.append(f"crawl error: {message}")
                self.record(first or self.source.agency_id, "agency", "failed", error=f"crawl error: {message}")
                self.event("error", "crawl error", detail=message)
            finally:
                self.writer.add(self.summary, self.records)
        self.event("done")


def crawl(
    sources: Sequence[Source],
    raw: RawZone,
    log: FetchLog,
    fetcher: Fetcher,
    *,
    years: Collection[int] | None = None,
    workers: int | None = None,
    on_event: OnEvent | None = None,
) -> CrawlResult:
    """Discover, fetch and store the reports of `sources`, logging every attempt.

    Agencies are taken in turn from each host (the registry lists a host's agencies side by side), on
    `workers` threads, by default as many as the hosts have request slots (at most MAX_THREADS): the
    politeness delay bounds each host, so every host must be worked from the start.

    `on_event(CrawlEvent)` reports progress (after each page, and at the start and end of each agency).
    """
    writer = _LogWriter(log)
    jobs = [_AgencyCrawl(s, raw, log, fetcher, on_event, writer) for s in sources]
    order, hosts = _by_host(jobs)
    threads = workers or min(MAX_THREADS, max(1, hosts * fetcher.per_host_concurrency))
    try:
        if jobs:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crawl") as pool:
                list(pool.map(lambda job: job.run(years), order))
    finally:
        writer.flush()
    return CrawlResult([p for job in jobs for p in job.pages], {job.source.agency_id: job.summary for job in jobs})


def _by_host(jobs: Sequence[_AgencyCrawl]) -> tuple[list[_AgencyCrawl], int]:
    """The jobs dealt out round-robin over their hosts, and the number of hosts."""
    queues: dict[str, list[_AgencyCrawl]] = {}
    for job in jobs:
        queues.setdefault(urlsplit(job.first_url or "").hostname or "", []).append(job)
    dealt = [job for round_ in zip_longest(*queues.values()) for job in round_ if job is not None]
    return dealt, len(queues)

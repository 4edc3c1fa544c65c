"""The sources registry: which agencies to scrape, where their annual-report columns are, which hosts they may
be fetched from.

One CSV row per agency (see the README, "The sources registry"). The file is validated as a whole when loaded:
every problem is a SourcesError whose message starts with "<file>:<line>:", so a typo in a registry of hundreds
of rows can be found at once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LEVELS: tuple[str, ...] = ("province", "city", "county", "township")  # also the region columns, top down
KINDS: tuple[str, ...] = ("government", "department")
COLUMNS: tuple[str, ...] = (
    "agency_id", "name", "province", "city", "county", "township", "level", "kind",
    "listing_urls", "report_urls", "hosts",
)
URL_COLUMNS: tuple[str, ...] = ("listing_urls", "report_urls")
SITE_PLACEHOLDER = "{site}"

# The id names files and directories downstream (raw zone, logs), so it must be safe there as is.
_AGENCY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A bare host name: no scheme, port, path or credentials (those would never equal a URL's hostname).
_HOST = re.compile(r"[^\s/:@?#\[\]]+")


class SourcesError(ValueError):
    """A registry problem. `path` and `line` locate it when it comes from a file."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Source:
    agency_id: str
    name: str
    province: str
    city: str
    county: str
    township: str
    level: str  # one of LEVELS
    kind: str  # one of KINDS
    listing_urls: tuple[str, ...]
    report_urls: tuple[str, ...]
    hosts: tuple[str, ...]  # lower-case; when the file gives none, the hosts of the listing and report URLs

    @property
    def region(self) -> str:
        """The non-empty region parts, top down, joined by "/" (e.g. 浙江省/宁波市/鄞州区)."""
        return "/".join(p for p in (self.province, self.city, self.county, self.township) if p)

    def allows(self, url: str) -> bool:
        """Whether `url` may be fetched for this agency: its host (lower-case, port ignored) is one of hosts."""
        host = _hostname(url)
        return host is not None and host in {h.lower() for h in self.hosts}


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname  # lower-case, without port or credentials
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as e:
        return f"URL {url!r} is not a valid URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"URL {url!r} is not an absolute http(s) URL"
    return None if parts.hostname else f"URL {url!r} has no host"


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _records(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the file line each starts on; blank lines and `#` comment lines are skipped before the
    CSV reader sees them, so line numbers stay those of the file."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [(n, line) for n, line in enumerate(lines, start=1) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.reader((line + "\n" for _, line in kept), strict=True)
    start = 0
    try:
        for row in reader:
            yield kept[start][0], row
            start = reader.line_num  # lines read so far: the next record starts on the next kept line
    except csv.Error as e:
        line = kept[reader.line_num - 1][0]
        raise SourcesError(f"{name}:{line}: malformed CSV: {e}", name, line) from e


def _check_header(header: list[str], name: str, line: int) -> list[str]:
    columns = [c.strip() for c in header]
    problems = [
        f"{label}: {', '.join(values)}"
        for label, values in (("missing columns", [c for c in COLUMNS if c not in columns]),
                              ("unexpected columns", [c for c in columns if c not in COLUMNS]),
                              ("duplicated columns", sorted({c for c in columns if columns.count(c) > 1})))
        if values
    ]
    if problems:
        raise SourcesError(f"{name}:{line}: header: {'; '.join(problems)} (expected: {','.join(COLUMNS)})",
                           name, line)
    return columns


def _problems(values: dict[str, str], urls: dict[str, tuple[str, ...]], hosts: tuple[str, ...]) -> Iterator[str]:
    """The problems of a row, in the order they are looked for (the first one is reported)."""
    agency_id, level, kind = values["agency_id"], values["level"], values["kind"]
    rules = (
        (not agency_id, "empty agency_id"),
        (not agency_id.isascii(), f"agency_id {agency_id!r} is not ASCII"),
        (not _AGENCY_ID.fullmatch(agency_id),
         f"agency_id {agency_id!r} is not a safe id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit)"),
        (".." in agency_id, f"agency_id {agency_id!r} contains '..'"),
        (not values["name"], f"empty name for agency_id {agency_id!r}"),
        (level not in LEVELS, f"unknown level {level!r} (expected one of: {', '.join(LEVELS)})"),
        (kind not in KINDS, f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})"),
    )
    yield from (problem for broken, problem in rules if broken)
    # The region must name the agency's own level, and nothing below it (a city bureau has no county).
    own = LEVELS.index(level)
    if not values[level]:
        yield f"level {level!r} but the {level} column is empty"
    below = [c for c in LEVELS[own + 1:] if values[c]]
    if below:
        yield f"level {level!r} but {', '.join(below)} given (parts below the agency's own level)"
    if not any(urls.values()):
        yield "no URL: give at least one listing_urls or report_urls value"
    column_urls = [(column, url) for column in URL_COLUMNS for url in urls[column]]
    yield from (f"{column}: {problem}" for column, url in column_urls if (problem := _url_problem(url)))
    yield from (f"hosts: {host!r} is not a bare host name (no scheme, port or path)"
                for host in hosts if not _HOST.fullmatch(host))
    yield from (f"{column}: URL {url!r}: host {_hostname(url)!r} is not in hosts ({' '.join(hosts)})"
                for column, url in column_urls if hosts and _hostname(url) not in hosts)


def _row_source(values: dict[str, str]) -> tuple[Source | None, str | None]:
    """The Source a row describes, or the first problem with it."""
    urls = {c: _unique(values[c].split()) for c in URL_COLUMNS}
    hosts = _unique(h.lower() for h in values["hosts"].split())
    problem = next(_problems(values, urls, hosts), None)
    if problem:
        return None, problem
    url_hosts = _unique(_hostname(u) or "" for c in URL_COLUMNS for u in urls[c])
    fields = {c: values[c] for c in ("agency_id", "name", *LEVELS, "level", "kind")}
    return Source(**fields, **urls, hosts=hosts or url_hosts), None


def load_sources(path: str | Path, site: str | None = None) -> list[Source]:
    """Read and validate a registry file (UTF-8, with or without BOM). Raises SourcesError naming file and line.

    `site` replaces the placeholder `{site}` in URLs (the bundled demo registry's base URL,
    known only once the demo site is served); a registry that uses it cannot be loaded without it."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SourcesError(f"{name}: cannot read: {e.strerror or e}", name) from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SourcesError(f"{name}:{line}: not UTF-8 (byte {e.start})", name, line) from e
    if SITE_PLACEHOLDER in text:
        if not site:
            raise SourcesError(f"{name}: uses {SITE_PLACEHOLDER}: give the site's base URL (e.g. --site)", name)
        text = text.replace(SITE_PLACEHOLDER, site.rstrip("/"))
    records = _records(text, name)
    first = next(records, None)
    if first is None:
        raise SourcesError(f"{name}: no header (expected: {','.join(COLUMNS)})", name)
    columns = _check_header(first[1], name, first[0])
    sources: list[Source] = []
    first_line: dict[str, int] = {}
    problems: list[tuple[int, str]] = []  # every bad row is reported (each by its first problem)
    for line, row in records:
        if len(row) != len(columns):
            problems.append((line, f"expected {len(columns)} fields, found {len(row)}"))
            continue
        source, problem = _row_source({c: v.strip() for c, v in zip(columns, row, strict=True)})
        if source is None:
            problems.append((line, str(problem)))
        elif source.agency_id in first_line:
            problems.append((line, f"duplicate agency_id {source.agency_id!r} "
                                   f"(first on line {first_line[source.agency_id]})"))
        else:
            first_line[source.agency_id] = line
            sources.append(source)
    if problems:
        raise SourcesError("\n".join(f"{name}:{line}: {problem}" for line, problem in problems), name, problems[0][0])
    return sources


def region_matches(path: str, region: str) -> bool:
    """Whether the region path `path` (e.g. "浙江省/宁波市/鄞州区") is in `region`: a prefix of the path
    ("浙江", "浙江省/宁波市") or any one part of it exactly ("宁波市", "鄞州区"). The one rule of every
    --region (fetch, compare, export, site); a blank `region` matches nothing."""
    wanted = region.strip().strip("/").strip()
    return bool(wanted) and (path.startswith(wanted) or wanted in path.split("/"))


def select(
    sources: Iterable[Source], agencies: Collection[str] | None = None, region: str | None = None
) -> list[Source]:
    """The sources among `agencies` (ids; None: all) and in `region` (a prefix of the region path, e.g.
    "浙江省/宁波市", or any one part exactly, e.g. "鄞州区"; None: all), in registry order.
    Unknown agency ids raise SourcesError listing them."""
    sources = list(sources)
    if isinstance(agencies, str):  # one id passed bare would otherwise be read as its characters
        agencies = (agencies,)
    if agencies is not None:
        known = {s.agency_id for s in sources}
        unknown = [a for a in _unique(agencies) if a not in known]
        if unknown:
            raise SourcesError(f"unknown agency id(s): {', '.join(repr(a) for a in unknown)}")
        sources = [s for s in sources if s.agency_id in set(agencies)]
    if region is not None and region.strip().strip("/").strip():
        sources = [s for s in sources if region_matches(s.region, region)]
    return sources

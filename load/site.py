"""`govreports site OUT/`: the warehouse as static HTML that opens from disk (no server, nothing fetched at view
time): an index by region, a page per region (the trends of its units, declines first, missing reports
marked), a page per agency (every year's numbers, its checks, its sources), and the data-quality and coverage
lists.

Every page is one template (site_templates/page.html) filled with sections of plain data; Jinja escapes every
value, and only http(s) URLs from the data become links (a hostile page's `javascript:` URL stays text).
Charts are compare.chart's SVG files shown through <img>, so nothing in them can run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import jinja2
import pandas as pd
from fontTools import subset
from fontTools.ttLib import TTFont

from govreports.extract.rawzone import RawZone
from govreports.load import compare
from govreports.load.query import open_locked

TEMPLATES = resources.files("govreports.load") / "site_templates"
OWN_FILES = ("index.html", "quality.html", "coverage.html", "region-*.html", "agency-*.html", "charts/*.svg")
READ = ("parsed", "parsed_from_file")  # coverage statuses of a report that was read


@dataclass(frozen=True, slots=True)
class Cell:
    text: object = ""
    href: str | None = None
    cls: str = ""
    tip: str = ""


@dataclass(slots=True)
class Section:
    heading: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    charts: list[str] = field(default_factory=list)  # file names under charts/


def web(url: object) -> str | None:
    """A URL from the data as a link target: http(s) only, else None (shown as text)."""
    return url if isinstance(url, str) and re.match(r"https?://", url, re.IGNORECASE) else None


def missing(value: object) -> bool:
    """None, NaN, NA or NaT: what pandas gives for a missing value of any type."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def number(value: object) -> str:
    """A count as an integer, an amount as printed; missing as the empty string."""
    if missing(value):
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def text(value: object) -> str:
    """A string from the data; missing as the empty string (pandas gives NaN or None for it)."""
    return "" if missing(value) else str(value)


def num(value: object, cls: str = "") -> Cell:
    return Cell(number(value), cls=f"num {cls}".strip())


def agency_page(agency_id: str) -> str:
    """A file name for the agency: its id when plain ASCII, else a hash of it (ids come from the registry)."""
    plain = re.fullmatch(r"[A-Za-z0-9_-]{1,64}", agency_id or "")
    return f"agency-{agency_id if plain else hashlib.sha256(str(agency_id).encode()).hexdigest()[:16]}.html"


def region_page(region: str) -> str:
    return f"region-{hashlib.sha256(region.encode()).hexdigest()[:12]}.html"


def prefixes(regions: Iterable[str]) -> list[str]:
    """Every region and each of its ancestors (浙江省, 浙江省/宁波市, …), parents before children."""
    return sorted({"/".join(r.split("/")[:k]) for r in regions if r for k in range(1, r.count("/") + 2)})


class Site:
    def __init__(self, con: duckdb.DuckDBPyConnection, out: Path, raw: RawZone | None,
                 years: tuple[int, int] | None) -> None:
        self.con, self.out, self.raw, self.years = con, out, raw, years
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                                      undefined=jinja2.StrictUndefined)
        self.coverage = self.df("SELECT * FROM coverage" + (" WHERE year BETWEEN ? AND ?" if years else ""),
                                list(years or ()))
        self.coverage["region"] = self.coverage.region.fillna("")  # an agency the registry gives no region
        self.status = {(r.agency_id, r.year): r.status for r in self.coverage.itertuples()}
        self.chars: set[str] = set()  # every character the pages print, for the font subset

    def font(self) -> None:
        """The bundled CJK font cut down to the characters the pages print (tens of kB, not 16 MB), which
        style.css loads: a machine without a Chinese font shows Chinese, not boxes."""
        opts = subset.Options()
        opts.layout_features, opts.notdef_outline = [], True
        font = TTFont(str(compare.cjk_font()), lazy=True)
        cutter = subset.Subsetter(opts)
        cutter.populate(text="".join(sorted(self.chars)))
        cutter.subset(font)
        font.save(str(self.out / "cjk.otf"))

    def df(self, sql: str, args: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, args or []).df()

    def write(self, name: str, title: str, sections: list[Section]) -> Path:
        path = self.out / name
        html = self.env.get_template("page.html").render(title=title, sections=sections)
        self.chars.update(html)
        path.write_text(html, encoding="utf-8")
        return path

    def raw_cell(self, sha: str | None) -> Cell:
        """The raw copy: a relative link into the warehouse's raw zone when the site sits inside the warehouse
        and the file is there, else its sha256."""
        if not sha:
            return Cell("")
        if self.raw is not None and self.raw.has(sha):
            return Cell("raw copy", os.path.relpath(self.raw.path(sha), self.out), tip=sha)
        return Cell(f"sha256 {sha}", cls="sha")

    def agency_cell(self, agency_id: str, agency: str) -> Cell:
        return Cell(agency, agency_page(agency_id))

    # -- pages ------------------------------------------------------------------------------------------

    def index(self, regions: list[str]) -> None:
        cov = self.coverage
        rows = []
        for region in regions:
            mine = cov[(cov.region == region) | cov.region.str.startswith(region + "/")]
            read = mine.status.isin(READ)
            rows.append([Cell(region.rsplit("/", 1)[-1], region_page(region), f"level{region.count('/')}", region),
                         num(mine.agency_id.nunique()), num(read.sum()),
                         num((~read).sum(), "missing" if (~read).any() else "")])
        agencies = cov.drop_duplicates("agency_id").sort_values(["region", "agency_id"])
        self.write("index.html", "政府信息公开工作年度报告 (govreports)", [
            Section("Regions", ["region", "units", "reports read", "missing (agency-years)"], rows,
                    "Each region's page shows the licensing, penalty and request trends of its units."),
            Section("Agencies", ["agency", "region"],
                    [[self.agency_cell(a.agency_id, a.agency), Cell(a.region, a.region and region_page(a.region))]
                     for a in agencies.itertuples()]),
        ])

    def region(self, region: str) -> None:
        cov = self.coverage
        years = sorted(cov.year.unique())
        span = f"{years[0]}–{years[-1]}" if years else ""
        sections = []
        for measure, (spec, _) in compare.MEASURES.items():
            try:
                wide, long = compare.compare(self.con, measure, region=region, years=self.years)
            except compare.NoMatch:  # units, but none printed this measure: the table shows their coverage
                wide, long = pd.DataFrame(), pd.DataFrame()
            section = Section(spec.label + ", largest declines first")
            if not long.empty:
                chart = f"{region_page(region)[:-5]}-{measure}.svg"
                compare.chart(long, self.out / "charts" / chart, f"{spec.label} — {region}")
                section.charts.append(chart)
            section.columns = ["agency", *map(str, years), "first", "last", "change", "% change"]
            for r in wide.to_dict("records"):
                cells = [self.agency_cell(r["agency_id"], r["agency"])]
                for y in years:
                    value = number(r.get(str(y)))
                    status = self.status.get((r["agency_id"], y), "not_found")
                    cells.append(Cell(value, cls="num") if value or status in READ else
                                 Cell(status, cls="missing", tip="no report found, or none readable"))
                pct = r["pct_change"]  # one decimal, as compare rounds it: 73.0 beside -58.7
                cells += [*(num(r[k]) for k in ("first", "last", "change")),
                          Cell("" if missing(pct) else f"{pct:.1f}", cls="num")]
                section.rows.append(cells)
            if wide.empty:
                section.note = "no data"
            sections.append(section)
        gaps = compare.missing(self.con, region, self.years)
        sections.append(Section("Missing reports (no report found, or none readable: not a decline)",
                                ["year", "agencies", "reporting", "missing"],
                                [[Cell(r.year), num(r.agencies), num(r.reporting),
                                  num(r.missing, "missing" if r.missing else "")] for r in gaps.itertuples()]))
        self.write(region_page(region), f"{region} {span}", sections)

    def agency(self, agency_id: str, agency: str, region: str) -> None:
        versions = self.df("SELECT report_id, content_sha256, published FROM reports_all_versions "
                           "WHERE agency_id = ?", [agency_id]).set_index("report_id")
        cov = self.coverage[self.coverage.agency_id == agency_id].sort_values("year")
        found = Section("Reports", ["year", "status", "published", "source page", "file's page", "raw copy",
                                    "failure"])
        for c in cov.itertuples():
            # coverage's version: the current one, else (none read) the last loaded, whose raw copy says why
            sha, published = versions.loc[c.report_id] if c.report_id in versions.index else (None, None)
            found.rows.append([Cell(c.year), Cell(c.status, cls="" if c.status in READ else "missing"),
                               Cell(text(published)[:10]),
                               Cell(text(c.url), web(c.url)), Cell(text(c.source_page), web(c.source_page)),
                               self.raw_cell(sha), Cell(text(c.failure))])
        facts = self.df("SELECT f.year, f.section, f.metric, f.row_label, f.column_label, f.value, f.value_status "
                        "FROM facts f JOIN reports r USING (report_id) WHERE r.agency_id = ? AND f.metric IS NOT NULL "
                        "ORDER BY f.section, f.metric, f.column_label, f.year", [agency_id])
        if self.years:
            facts = facts[facts.year.between(*self.years)]
        years = sorted(facts.year.unique())
        numbers = Section("Every year's numbers", ["section", "metric", "label", *map(str, years)],
                          note="the label as the latest report prints it; blank: not printed")
        for (sec, metric, column), rows in facts.groupby(["section", "metric", "column_label"], sort=False,
                                                          dropna=False):
            by_year = {r.year: number(r.value) or r.value_status for r in rows.itertuples()}
            label = rows.row_label.iloc[-1] + ("" if pd.isna(column) else f" / {column}")
            numbers.rows.append([Cell(sec), Cell(metric), Cell(label),
                                 *(Cell(by_year.get(y, ""), cls="num") for y in years)])
        checks = self.df("SELECT r.year, c.rule, c.severity, c.subject, c.expected, c.actual, c.status, c.detail "
                         "FROM checks c JOIN reports r USING (report_id) WHERE r.agency_id = ? "
                         "UNION ALL SELECT year, rule, severity, subject, expected, actual, status, "
                         "'across years' FROM cross_year_checks WHERE agency_id = ? "
                         "ORDER BY status IN ('pass', 'match'), year, rule", [agency_id, agency_id])
        if self.years:
            checks = checks[checks.year.between(*self.years)]
        checked = Section("Checks", ["year", "rule", "severity", "subject", "expected", "actual", "status", "detail"],
                          note=", ".join(f"{n} {s}" for s, n in checks.status.value_counts().items()) or "none")
        for c in checks.itertuples():
            ok = c.status in ("pass", "match")
            checked.rows.append([Cell(c.year), Cell(c.rule), Cell(c.severity), Cell(text(c.subject)),
                                 num(c.expected), num(c.actual), Cell(c.status, cls="" if ok else "fail"),
                                 Cell(text(c.detail))])
        self.write(agency_page(agency_id), f"{agency} ({region})", [found, numbers, checked])

    def lists(self) -> None:
        dq = self.df("SELECT * FROM data_quality WHERE NOT (status = 'parsed' AND checks_failed = 0 AND "
                     "narrative_mismatches = 0 AND missing_sections = '' AND n_unparsed = 0) "
                     + ("AND year BETWEEN ? AND ? " if self.years else "") + "ORDER BY agency_id, year",
                     list(self.years or ()))
        cols = ["status", "failure", "checks_failed", "failed_rules", "narrative_mismatches", "missing_sections",
                "n_unparsed", "is_current"]
        self.write("quality.html", "Data quality", [Section(
            "Report versions with a failure, a failed check, a mismatch with the prose or a missing section",
            ["agency", "year", *cols, "url", "raw copy"],
            [[self.agency_cell(r.agency_id, r.agency), Cell(r.year),
              *(num(v) if isinstance(v, int | float) and not isinstance(v, bool) else Cell(text(v))
                for v in (getattr(r, c) for c in cols)),
              Cell(text(r.url), web(r.url)), self.raw_cell(r.content_sha256)] for r in dq.itertuples()],
            "none" if dq.empty else "")])
        cov = self.coverage
        years = sorted(cov.year.unique())
        table = cov.pivot_table(index=["region", "agency_id", "agency"], columns="year", values="status",
                                aggfunc="first").reset_index()
        self.write("coverage.html", "Coverage", [Section(
            "What the runs found per agency and year", ["region", "agency", *map(str, years)],
            [[Cell(r["region"], region_page(r["region"])), self.agency_cell(r["agency_id"], r["agency"]),
              *(Cell(r[y], cls="" if r[y] in READ else "missing") for y in years)]
             for r in table.to_dict("records")],
            "statuses: parsed, parsed_from_file (read); not_found, image_only, needs_converter, file_unreadable, "
            "page_without_tables, failed (missing)")])


def build(db_path: str | os.PathLike, out: str | os.PathLike, raw: str | os.PathLike | None = None,
          years: tuple[int, int] | None = None) -> Path:
    """Write the site into `out` (created; its earlier pages replaced) from the warehouse at `db_path`, read
    only; return the index page. `raw`: the raw zone, linked when `out` is inside the warehouse's root (the
    raw zone's parent), so the links still resolve when the warehouse folder is published or copied whole."""
    out = Path(out).absolute()
    zone = None
    if raw is not None and out.resolve().is_relative_to(Path(raw).resolve().parent):
        zone = RawZone(raw)
    with open_locked(db_path) as con:
        (out / "charts").mkdir(parents=True, exist_ok=True)
        for pattern in OWN_FILES:  # an earlier build's pages (an agency since removed), and nothing else
            for old in out.glob(pattern):
                old.unlink()
        shutil.copyfile(str(TEMPLATES / "style.css"), out / "style.css")
        site = Site(con, out, zone, years)
        regions = prefixes(site.coverage.region.dropna().unique())
        site.index(regions)
        for region in regions:
            site.region(region)
        for a in site.coverage.drop_duplicates("agency_id").itertuples():
            site.agency(a.agency_id, a.agency, a.region)
        site.lists()
        site.font()
    return out / "index.html"

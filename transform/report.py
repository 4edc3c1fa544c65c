"""One published page (bytes) -> its long-frame rows, its checks, and what is known about the report.

This is the whole parse of one page, with no network and no Prefect: `govreports parse`, the
flows and the benchmarks all call `parse_report`. The rows come as tuples in the declared column
order (`ParsedReport.facts` and `.checks` make frames of them): a caller with many pages makes one
frame, or one Arrow table, for all of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from govreports.extract.decode import DecodeError, decode
from govreports.extract.page import Page, read_page
from govreports.extract.text_grid import text_table
from govreports.transform.checks import CheckRow, check_records
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, frame_from_rows
from govreports.transform.tables import Recognition, recognise


class ParseFailure(Exception):
    """The input yielded no report tables. `reason` is one of REASONS."""

    REASONS = ("empty input", "cannot decode", "not a report", "no report tables found")

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class ReportMeta:
    report_id: str
    source: str
    content_sha256: str
    agency: str | None
    year: int | None
    template: str | None
    title: str | None = None
    publisher: str | None = None  # 发布机构 / 发文机关 from the metadata box
    published: str | None = None  # ISO date from the metadata box
    agency_source: str | None = None
    year_source: str | None = None
    encoding: str | None = None
    kind: str | None = None  # html | text
    truncated: bool = False
    problems: list[str] = field(default_factory=list)


FactRow = tuple  # one long-frame row, in FACT_COLUMNS order


@dataclass(slots=True)
class ParsedReport:
    meta: ReportMeta
    fact_rows: list[FactRow]  # FACT_COLUMNS order; the pipeline makes one frame per batch of pages
    check_rows: list[CheckRow]  # CHECK_COLUMNS order

    @property
    def facts(self) -> pd.DataFrame:
        return frame_from_rows(self.fact_rows, FACT_COLUMNS)

    @property
    def checks(self) -> pd.DataFrame:
        return frame_from_rows(self.check_rows, CHECK_COLUMNS)


def report_id_for(content_sha256: str) -> str:
    """A report version is its bytes: the same page changed after publication is a new version."""
    return content_sha256[:16]


def _recognise(page: Page, year: int | None) -> Recognition:
    rec = recognise(page.tables, year, page.complete)
    if not rec.values and page.kind == "html" and page.text:
        # Tables drawn as text inside the HTML (<pre>, one <p> per cell).
        fallback = recognise([text_table(page.text)], year, page.complete)
        if fallback.values:
            fallback.problems.append("no HTML report table; read the page's text rendering")
            return fallback
    return rec


def parse_report(data: bytes, source: str = "<bytes>", agency: str | None = None, year: int | None = None,
                 http_charset: str | None = None) -> ParsedReport:
    """Parse one page. `agency` and `year` override what the page says. Raises ParseFailure."""
    if not data or not data.strip():
        raise ParseFailure("empty input")
    sha = hashlib.sha256(data).hexdigest()
    try:
        decoded = decode(data, http_charset)
    except DecodeError as exc:
        raise ParseFailure("cannot decode", str(exc)) from exc
    page = read_page(decoded.text)
    year = year if year is not None else page.year
    rec = _recognise(page, year)
    if not rec.values:
        looks_like_report = rec.label_hits >= 3 or (
            page.agency_source == "title" or "政府信息公开" in (page.title or "")
        )
        if looks_like_report:
            raise ParseFailure("no report tables found", "the page names a report but prints no report table")
        raise ParseFailure("not a report", "no report title and no report table")
    meta = ReportMeta(
        report_id=report_id_for(sha), source=source, content_sha256=sha,
        agency=agency if agency is not None else page.agency, year=year, template=rec.template,
        title=page.title, publisher=page.metadata.get("发布机构") or page.metadata.get("发文机关"),
        published=page.published, agency_source="caller" if agency is not None else page.agency_source,
        year_source="caller" if year is not None and year != page.year else page.year_source,
        encoding=decoded.encoding, kind=page.kind, truncated=rec.truncated, problems=rec.problems,
    )
    rid, agency_name, year_ = meta.report_id, meta.agency, meta.year
    facts = [
        (rid, agency_name, year_, v.template, v.section, v.metric, v.row_label, v.column_label, v.applicant,
         v.parsed.value, v.unit, v.parsed.status, v.parsed.raw, v.table, v.row, v.col, source, sha)
        for v in rec.values
    ]
    rows = ((v.metric, v.applicant, v.parsed.value, v.parsed.status, v.template) for v in rec.values)
    return ParsedReport(meta=meta, fact_rows=facts, check_rows=check_records(meta.report_id, rows))

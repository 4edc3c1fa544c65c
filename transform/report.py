"""A Document -> its long-frame rows, its checks, and what is known about the report.

No network, no Prefect, and no reading of pages: extract makes the Document (flows/parse.py joins the
two for bytes). The rows are typed tuples in the declared column order (`ParsedReport.facts` and
`.checks` make frames of them): a caller with many pages makes one frame, or one Arrow table, for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from govreports.extract.document import Document, ParseFailure
from govreports.transform.checks import check_records
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, Check, Fact, frame_from_rows
from govreports.transform.narrative import narrative_records
from govreports.transform.tables import Recognition, recognise

__all__ = ["Identity", "ParseFailure", "ParsedReport", "ReportMeta", "decide_identity", "parse_document",
           "report_id_for"]


class Identity(NamedTuple):
    """Who published the report and the year it reports on, with where each came from."""

    agency: str | None
    agency_source: str | None  # caller | title | metadata | link | None
    year: int | None
    year_source: str | None  # caller | title | period | link | text | published | None


_PAGE_YEAR_FIRM = ("title", "period")  # the page's own word; its other guesses yield to the link's


def decide_identity(doc: Document, agency: str | None = None, year: int | None = None,
                    link_agency: str | None = None, link_year: int | None = None) -> Identity:
    """The one precedence. Agency: the caller's (the registry's name), else the page's, else the listing
    link's. Year: the caller's, else the page's title or statistics period, else the link's, else the
    page's weaker guesses (the first year its text names, its publication date minus one)."""
    if agency is not None:
        who = (agency, "caller")
    elif doc.agency or not link_agency:
        who = (doc.agency, doc.agency_source)
    else:
        who = (link_agency, "link")
    if year is not None:
        when = (year, "caller")
    elif doc.year_source in _PAGE_YEAR_FIRM or link_year is None:
        when = (doc.year, doc.year_source)
    else:
        when = (link_year, "link")
    return Identity(*who, *when)


@dataclass(slots=True)
class ReportMeta:
    report_id: str
    source: str
    content_sha256: str
    agency: str | None
    year: int | None
    template: str | None
    agency_id: str | None = None
    title: str | None = None
    publisher: str | None = None  # 发布机构 / 发文机关 from the metadata box
    published: str | None = None  # ISO date from the metadata box
    agency_source: str | None = None
    year_source: str | None = None
    encoding: str | None = None
    kind: str | None = None  # html | text | pdf | docx: the reports' `form`
    truncated: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedReport:
    meta: ReportMeta
    fact_rows: list[Fact]  # the pipeline makes one frame (or Arrow table) per batch of pages
    check_rows: list[Check]

    @property
    def facts(self) -> pd.DataFrame:
        return frame_from_rows(self.fact_rows, FACT_COLUMNS)

    @property
    def checks(self) -> pd.DataFrame:
        return frame_from_rows(self.check_rows, CHECK_COLUMNS)


def report_id_for(content_sha256: str) -> str:  # a version is its bytes: a page changed later is a new one
    return content_sha256[:16]


def _recognise(doc: Document, year: int | None) -> Recognition:
    rec = recognise(doc.tables, year, doc.complete)
    if not rec.values and doc.kind == "html" and doc.text:
        # Tables drawn as text inside the HTML (<pre>, one <p> per cell).
        fallback = recognise([doc.text_grid], year, doc.complete)
        if fallback.values:
            fallback.problems.append("no HTML report table; read the page's text rendering")
            return fallback
    return rec


def parse_document(doc: Document, agency: str | None = None, year: int | None = None, agency_id: str | None = None,
                   link_agency: str | None = None, link_year: int | None = None) -> ParsedReport:
    """The rows and checks of one document. `agency` (the registry's name) and `year` override what the
    page says; the listing link's `link_agency` and `link_year` fill in (decide_identity). Raises
    ParseFailure when the document holds no report."""
    who = decide_identity(doc, agency, year, link_agency, link_year)
    # The template, when no header prints it, is guessed from the year the page (or caller) gives.
    rec = _recognise(doc, year if year is not None else doc.year)
    if not rec.values:
        if rec.label_hits >= 3 or doc.agency_source == "title" or "政府信息公开" in (doc.title or ""):
            raise ParseFailure("no report tables found", "the page names a report but prints no report table")
        raise ParseFailure("not a report", "no report title and no report table")
    sha, source = doc.content_sha256, doc.source
    rid = report_id_for(sha)
    meta = ReportMeta(
        report_id=rid, source=source, content_sha256=sha, agency=who.agency, year=who.year,
        template=rec.template, agency_id=agency_id, title=doc.title, publisher=doc.publisher,
        published=doc.published, agency_source=who.agency_source, year_source=who.year_source,
        encoding=doc.encoding, kind=doc.kind, truncated=rec.truncated, problems=rec.problems,
    )
    facts = [
        Fact(rid, agency_id, who.agency, who.year, v.template, v.section, v.metric, v.row_label, v.column_label,
             v.applicant, v.parsed.value, v.unit, v.parsed.status, v.parsed.raw, v.table, v.row, v.col, v.page,
             source, sha)
        for v in rec.values
    ]
    rows = ((v.metric, v.applicant, v.parsed.value, v.parsed.status, v.template) for v in rec.values)
    said = narrative_records(rid, doc.text, ((f.metric, f.applicant, f.value, f.value_status) for f in facts))
    return ParsedReport(meta=meta, fact_rows=facts, check_rows=check_records(rid, rows) + said)

"""Bytes to parsed report: extract reads the page, transform parses the document. No Prefect, and
none of the pipeline's imports: `govreports parse` comes through here as well as flows/steps.py."""

import gc

from govreports.extract.document import read_document
from govreports.transform.report import ParsedReport, parse_document

GC_THRESHOLD = 20_000  # allocations between young collections while parsing (Python's default is 700)


def tune_gc() -> None:
    """For a process that parses many pages: they allocate many small objects, almost none in cycles, and a
    full collection walks everything alive, so what is alive now is frozen and young collections run less."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def parse_report(data: bytes, source: str = "<bytes>", agency: str | None = None, year: int | None = None,
                 http_charset: str | None = None, *, agency_id: str | None = None, link_agency: str | None = None,
                 link_year: int | None = None) -> ParsedReport:
    """Read and parse one page's bytes: read_document, then parse_document. Raises ParseFailure."""
    return parse_document(read_document(data, source, http_charset), agency, year, agency_id, link_agency, link_year)

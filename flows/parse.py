"""Bytes to parsed report: extract reads the page, transform parses the document. No Prefect, and
none of the pipeline's imports: `govreports parse` comes through here as well as flows/steps.py."""

import ctypes
import ctypes.util
import gc

import pyarrow

from govreports.extract.document import read_document
from govreports.transform.report import ParsedReport, parse_document

GC_THRESHOLD = 20_000  # allocations between young collections while parsing (Python's default is 700)


def tune_gc() -> None:
    """For a process that parses many pages: they allocate many small objects, almost none in cycles, and a
    full collection walks everything alive, so what is alive now is frozen and young collections run less."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def release_memory() -> None:
    """After a batch, in a process that parses batch after batch: collect the pages' cyclic garbage (their
    trees) now rather than at some later full collection, and give freed heap back to the system (glibc keeps
    it otherwise, and a long-lived parse process grows batch after batch: BENCHMARKS.md, National scale)."""
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def parse_report(data: bytes, source: str = "<bytes>", agency: str | None = None, year: int | None = None,
                 http_charset: str | None = None, *, agency_id: str | None = None, link_agency: str | None = None,
                 link_year: int | None = None) -> ParsedReport:
    """Read and parse one page's bytes: read_document, then parse_document. Raises ParseFailure."""
    return parse_document(read_document(data, source, http_charset), agency, year, agency_id, link_agency, link_year)

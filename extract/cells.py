"""The cell grid every reader produces: what a table looked like, before any meaning is given to it;
and what one page may cost to read, whatever its markup."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Past these a page is refused ("page too large"), so that any page is read or refused in bounded
# memory and seconds (BENCHMARKS.md, "Parser memory"). Real report pages are far below them.
# Start tags and attributes ("<" less "</", and "=") in the decoded HTML: bounds lxml's tree before it is built.
MAX_PAGE_TAGS = 400_000
MAX_PAGE_CELLS = 300_000  # grid positions over all the page's tables, spans included
MAX_PAGE_SECONDS = 30.0  # wall clock for reading its tables


class ParseFailure(Exception):
    """The input yielded no report. `reason` is one of REASONS: the last two are raised by transform when
    the document holds no report, the others while reading (extract)."""

    REASONS = ("empty input", "cannot decode", "page too large", "unreadable file", "no text layer (scanned)",
               "needs converter", "not a report", "no report tables found")

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Budget:
    """What is left of one page's budget. A reader spends a row's cells before it builds them."""

    cells: int = MAX_PAGE_CELLS
    spans: int = MAX_PAGE_CELLS // 2  # of which copies made by rowspan/colspan: the rest stays for real cells
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_PAGE_SECONDS)

    def spend(self, cells: int) -> None:
        self.cells -= cells
        if self.cells < 0:
            raise ParseFailure("page too large", f"more than {MAX_PAGE_CELLS:,} table cells")
        if time.monotonic() > self.deadline:
            raise ParseFailure("page too large", f"its tables took more than {MAX_PAGE_SECONDS:.0f} s to read")


@dataclass(slots=True)
class Cell:
    text: str
    row: int  # HTML: grid row after span expansion; text: line number (0-based)
    col: int  # HTML: grid column after span expansion; text: cell index on its line
    copy: bool = False  # a position covered by a rowspan/colspan of a cell that starts elsewhere
    page: int | None = None  # 1-based page of a PDF (provenance); None elsewhere


@dataclass(slots=True)
class Table:
    index: int  # HTML: index among the page's <table> elements (document order); text: 0
    rows: list[list[Cell]] = field(default_factory=list)
    # False when row boundaries carry no meaning (text with one cell per line): the reader of the
    # table then relies on the template's column counts instead of on rows.
    row_delimited: bool = True

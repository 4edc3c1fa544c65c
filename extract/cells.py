"""The cell grid every reader produces: what a table looked like, before any meaning is given to it."""

from __future__ import annotations

from dataclasses import dataclass, field


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

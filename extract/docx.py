"""DOCX bytes -> Document, with python-docx. Tables in document order, merged cells (gridSpan, vMerge)
expanded as HTML rowspan/colspan are (copy=True on covered positions). The paragraphs between tables
are rows of one cell, in order among the tables, so that a caption printed as a paragraph
(第二十条第（一）项 above its block) is read where it stands, as the text reader reads every line.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

from govreports.extract.cells import Cell, ParseFailure, Table
from govreports.extract.page import Document, identify, metadata_from_text

__all__ = ["read_docx"]


def _fold(text: str) -> str:
    return " ".join(text.split())  # as HTML cell text: a line break inside a cell is one space


def _grid(table, index: int) -> Table:
    out = Table(index=index)
    # <w:tc> -> its text: a merged cell's one element recurs at each position it covers. Keyed by the
    # element itself, which keeps lxml's proxy alive (an id() of a freed proxy is reused).
    seen: dict[object, str] = {}
    for r, row in enumerate(table.rows):
        cells = []
        for c, cell in enumerate(row.cells, row.grid_cols_before):
            key = cell._tc
            copy = key in seen
            if not copy:
                seen[key] = _fold(cell.text)
            cells.append(Cell(seen[key], r, c, copy=copy))
        out.rows.append(cells)
    return out


def read_docx(data: bytes, source: str = "<bytes>") -> Document:
    """Read a Word (.docx) file. Raises ParseFailure ("empty input", "unreadable file")."""
    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table as DocxTable

    if not data.strip():
        raise ParseFailure("empty input")
    try:
        document = open_docx(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ParseFailure("unreadable file", f"not a DOCX python-docx can open ({exc})") from exc
    tables: list[Table] = []
    text: list[str] = []
    loose = Table(index=-1)
    headings: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, DocxTable):
            if loose.rows:
                loose.index = len(tables)
                tables.append(loose)
                loose = Table(index=-1)
            grid = _grid(block, len(tables))
            tables.append(grid)
            text.extend(c.text for row in grid.rows for c in row if not c.copy and c.text)
            continue
        line = _fold(block.text)
        if not line:
            continue
        loose.rows.append([Cell(line, len(loose.rows), 0)])
        text.append(line)
        if block.style is not None and block.style.name.startswith(("Heading", "Title")):
            headings.append(line)
    if loose.rows:
        loose.index = len(tables)
        tables.append(loose)
    visible = "\n".join(text)
    doc = Document(kind="docx", tables=tables, text=visible, title=headings[0] if headings else (text or [None])[0],
                   metadata=metadata_from_text(visible), source=source,
                   content_sha256=hashlib.sha256(data).hexdigest())
    identify(doc, headings)
    return doc

"""PDF bytes -> Document: ruled tables as pdfplumber finds them, the rest of the text as lines of words.

A table the library finds on one page is a piece; a piece that starts a page right under a piece that
ended the previous one (only a page footer such as `— 5 —` or `第 3 页` between) at the same left and right
edges continues it, and its repeat of the header rows is dropped. Each logical table is laid on the grid
of all its cells' edges, so a merged cell covers its grid positions as an HTML rowspan/colspan does
(copy=True). Text outside ruled tables (prose, and tables drawn without lines) is one row per printed
line, one cell per run of characters: a blank cell is then simply absent and the row comes out short,
which transform keeps unparsed; a label wrapped onto a line of its own is joined back to the line above.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field

from govreports.extract.cells import Cell, ParseFailure, Table
from govreports.extract.page import Document, identify, metadata_from_text

__all__ = ["read_pdf"]

_FURNITURE = re.compile(r"^(?:[-—–－\s]*\d+[-—–－\s]*|第\s*\d+\s*页(?:\s*[,，]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+)$")
_NUMBERED = re.compile(r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d+[.．、])")
_NUMBER = re.compile(r"\d")
_EDGE = 2.0  # points: edges closer than this are one edge
_WORD_GAP = 1.5  # points between two runs of characters that are two cells, not one
_WRAP = 1.5  # a line closer than this many font sizes under the previous one may continue its cells


@dataclass(slots=True)
class Line:
    """A printed line outside ruled tables: its runs of characters (x0, x1, text), left to right."""

    top: float
    size: float
    words: list[tuple[float, float, str]]


@dataclass(slots=True)
class Ruled:
    """A ruled table as found on one page: its cells' boxes (x0, top, x1, bottom) and texts."""

    top: float
    x0: float
    x1: float
    cells: list[tuple[tuple[float, float, float, float], str]]


@dataclass(slots=True)
class PdfPage:
    number: int  # 1-based
    blocks: list[Line | Ruled] = field(default_factory=list)  # top to bottom


def _fold(text: str | None) -> str:
    return " ".join((text or "").split())  # as HTML cell text: a wrapped line is one space


def pdfplumber_pages(data: bytes) -> list[PdfPage]:
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except (PDFSyntaxError, PdfminerException) as exc:
        raise ParseFailure("unreadable file", f"not a PDF pdfplumber can open ({exc})") from exc
    pages = []
    with pdf:
        for number, page in enumerate(pdf.pages, 1):
            out = PdfPage(number)
            found = page.find_tables()
            for table in found:
                cells = [(box, _fold(text)) for row, texts in zip(table.rows, table.extract(), strict=True)
                         for box, text in zip(row.cells, texts, strict=True) if box]
                out.blocks.append(Ruled(table.bbox[1], table.bbox[0], table.bbox[2], cells))
            boxes = [t.bbox for t in found]
            words = [w for w in page.extract_words(x_tolerance=_WORD_GAP, keep_blank_chars=True, extra_attrs=["size"])
                     if not any(b[0] <= (w["x0"] + w["x1"]) / 2 <= b[2] and b[1] <= (w["top"] + w["bottom"]) / 2 <= b[3]
                                for b in boxes)]
            for w in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
                last = out.blocks[-1] if out.blocks and isinstance(out.blocks[-1], Line) else None
                if last is not None and abs(w["top"] - last.top) < _EDGE:
                    last.words.append((w["x0"], w["x1"], w["text"].strip()))
                else:
                    out.blocks.append(Line(w["top"], w["size"], [(w["x0"], w["x1"], w["text"].strip())]))
            out.blocks.sort(key=lambda b: b.top)
            pages.append(out)
    return pages


def _edges(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > _EDGE:
            out.append(v)
    return out


def _at(edges: list[float], v: float) -> int:
    return min(range(len(edges)), key=lambda i: abs(edges[i] - v))


def _grid(pieces: list[tuple[int, Ruled]], index: int) -> Table:
    """One logical table from its pieces (page number, piece), laid on the edges of all its cells."""
    cols = _edges([v for _, p in pieces for box, _ in p.cells for v in (box[0], box[2])])
    grid: dict[tuple[int, int], Cell] = {}
    first: list[tuple[str, ...]] = []
    offset = 0
    for page, piece in pieces:
        rows = _edges([v for box, _ in piece.cells for v in (box[1], box[3])])
        placed = sorted((_at(rows, b[1]), _at(cols, b[0]), _at(rows, b[3]), _at(cols, b[2]), t)
                        for b, t in piece.cells)
        texts = [tuple(t for r, _, _, _, t in placed if r == row) for row in range(len(rows) - 1)]
        skip = 0
        if first:  # the header rows printed again at the top of the page
            while skip < len(texts) - 1 and skip < len(first) and texts[skip] == first[skip]:
                skip += 1
        else:
            first = texts
        for r0, c0, r1, c1, text in placed:
            if r0 < skip:
                continue
            for r in range(r0, max(r1, r0 + 1)):
                for c in range(c0, max(c1, c0 + 1)):
                    row = offset + r - skip
                    grid[(row, c)] = Cell(text, row, c, copy=(r, c) != (r0, c0), page=page)
        offset += len(rows) - 1 - skip
    width = len(cols) - 1
    table = Table(index=index)
    for r in range(offset):
        # A position no cell covers is printed blank: an empty cell keeps the cells after it in place.
        table.rows.append([grid.get((r, c)) or Cell("", r, c, page=None) for c in range(width)])
    return table


def _wrapped(line: Line, prev: Line | None, loose: list[tuple[int, Line]]) -> list[int] | None:
    """Where each run of `line` continues a label wrapped inside its cell: the index in `loose` of the
    line holding the run above it (a tall cell's label can sit a few lines up). None when `line` is a
    row of its own: not right under the previous line, or it holds a number or a numbering."""
    if prev is None or line.top - prev.top > _WRAP * max(line.size, prev.size):
        return None
    targets = []
    for x0, x1, text in line.words:
        if _NUMBER.search(text) or _NUMBERED.match(text):
            return None
        hit = next((i for i in range(len(loose) - 1, max(len(loose) - 4, -1), -1)
                    if any(x0 < b1 and b0 < x1 for b0, b1, _ in loose[i][1].words)), None)
        if hit is None:
            return None
        targets.append(hit)
    return targets


def assemble(pages: list[PdfPage], source: str = "<bytes>") -> Document:
    """The pages' blocks as a Document: tables in document order, page footers left out."""
    tables: list[Table] = []
    pieces: list[tuple[int, Ruled]] = []
    loose: list[tuple[int, Line]] = []
    text: list[str] = []
    sizes: list[tuple[float, str]] = []

    def close_pieces() -> None:
        if pieces:
            tables.append(_grid(pieces, len(tables)))
            pieces.clear()

    def close_loose() -> None:
        if loose:
            table = Table(index=len(tables))
            for r, (page, line) in enumerate(loose):
                table.rows.append([Cell(t, r, c, page=page) for c, (_, _, t) in enumerate(line.words) if t])
            tables.append(table)
            loose.clear()

    for page in pages:
        prev: Line | None = None
        ends = (0, len(page.blocks) - 1)  # a page number prints above or below everything else
        blocks = [b for i, b in enumerate(page.blocks)
                  if not (isinstance(b, Line) and i in ends and _FURNITURE.match(" ".join(w[2] for w in b.words)))]
        for i, block in enumerate(blocks):
            if isinstance(block, Ruled):
                close_loose()
                prev = None
                last_page, last = pieces[-1] if pieces else (0, None)
                # pieces is non-empty only when the block before this one was a ruled table
                if not (i == 0 and last is not None and last_page == page.number - 1
                        and abs(last.x0 - block.x0) < _EDGE and abs(last.x1 - block.x1) < _EDGE):
                    close_pieces()
                pieces.append((page.number, block))
                text.extend(t for _, t in block.cells)
                continue
            close_pieces()
            words = " ".join(t for _, _, t in block.words)
            targets = _wrapped(block, prev, loose)
            if targets is None:
                loose.append((page.number, block))
            for (x0, x1, t), i in zip(block.words, targets or (), strict=False):
                above = loose[i][1].words
                j = next(j for j, (b0, b1, _) in enumerate(above) if x0 < b1 and b0 < x1)
                above[j] = (above[j][0], above[j][1], f"{above[j][2]} {t}")
            prev = block
            text.append(words)
            if page.number == 1:
                sizes.append((block.size, words))
    close_pieces()
    close_loose()
    title = max(sizes, key=lambda s: s[0])[1] if sizes else None
    visible = "\n".join(line for line in text if line)
    doc = Document(kind="pdf", tables=tables, text=visible, title=title, metadata=metadata_from_text(visible),
                   source=source)
    identify(doc, [title] if title else [])
    return doc


def read_pdf(data: bytes, source: str = "<bytes>") -> Document:
    """Read a PDF's text layer. Raises ParseFailure ("empty input", "unreadable file", "no text layer
    (scanned)" with the page count)."""
    if not data.strip():
        raise ParseFailure("empty input")
    pages = pdfplumber_pages(data)
    if not any(p.blocks for p in pages):
        raise ParseFailure("no text layer (scanned)", f"{len(pages)} pages, no text on any")
    doc = assemble(pages, source)
    doc.content_sha256 = hashlib.sha256(data).hexdigest()
    return doc

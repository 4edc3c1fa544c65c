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
from govreports.extract.chinese import unify_radicals
from govreports.extract.page import Document, identify, metadata_from_text

__all__ = ["read_pdf"]

# Page furniture above or below everything else on a page: page numbers (— 5 —, 第 3 页, 3/12), and a
# browser's running header (date and time, then the page's title) and footer (its URL, then 3/12).
_FURNITURE = re.compile(r"^(?:[-—–－\s]*\d+[-—–－\s]*|第\s*\d+\s*页(?:\s*[,，]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+"
                        r"|\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4},?\s+\d{1,2}:\d{2}\b.*|(?:https?|file)://\S*\s+\d+\s*/\s*\d+)$")
_UNMAPPED = re.compile(r"\(cid:\d+\)")  # pdfminer's name for a glyph the font maps to no character
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
    bottom: float = 0.0
    page_height: float = 0.0


@dataclass(slots=True)
class PdfPage:
    number: int  # 1-based
    blocks: list[Line | Ruled] = field(default_factory=list)  # top to bottom


# A line wrapped inside a narrow cell: no space where the break falls between two CJK characters or two
# digits (本年新收政府信息公开申请 / 数量, ７７８ / ４), as the HTML it was printed from has none.
_WRAPPED = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef\d])\s*\n\s*(?=[\u3000-\u9fff\uff00-\uffef\d])")


def _join(head: str, tail: str) -> str:
    """Two parts of one cell's text (a row the page break cut), joined as _fold joins a wrapped line."""
    return _fold(f"{head}\n{tail}") if head else tail


def _fold(text: str | None) -> str:
    """A cell's text as HTML would give it: wrapped lines joined, other whitespace one space."""
    return " ".join(_WRAPPED.sub("", unify_radicals(_UNMAPPED.sub("", text or ""))).split())


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
            # A row cut by a page break has no ruling on the cut side (a browser draws a collapsed border
            # once, on the page the row above it is on): close the cells where the vertical rulings end.
            verticals = [e for e in page.edges if e["orientation"] == "v"]
            cuts = [min(e["top"] for e in verticals), max(e["bottom"] for e in verticals)] if verticals else []
            found = page.find_tables({"explicit_horizontal_lines": cuts})
            for table in found:
                cells = [(box, _fold(text)) for row, texts in zip(table.rows, table.extract(), strict=True)
                         for box, text in zip(row.cells, texts, strict=True) if box]
                out.blocks.append(Ruled(table.bbox[1], table.bbox[0], table.bbox[2], cells, table.bbox[3],
                                        float(page.height)))
            boxes = [t.bbox for t in found]
            words = [w for w in page.extract_words(x_tolerance=_WORD_GAP, keep_blank_chars=True, extra_attrs=["size"])
                     if not any(b[0] <= (w["x0"] + w["x1"]) / 2 <= b[2] and b[1] <= (w["top"] + w["bottom"]) / 2 <= b[3]
                                for b in boxes)]
            for w in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
                last = out.blocks[-1] if out.blocks and isinstance(out.blocks[-1], Line) else None
                if last is not None and abs(w["top"] - last.top) < _EDGE:
                    last.words.append((w["x0"], w["x1"], _fold(w["text"])))
                else:
                    out.blocks.append(Line(w["top"], w["size"], [(w["x0"], w["x1"], _fold(w["text"]))]))
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
    origin: dict[tuple[int, int], tuple[int, int]] = {}  # grid position -> where its cell's text is printed
    first: list[tuple[str, ...]] = []
    offset = 0
    split = False  # the previous piece's last row goes on at the top of this one
    for k, (page, piece) in enumerate(pieces):
        if k:
            # The previous piece ran down to the page's bottom margin (as wide as the top margin this piece
            # starts at): the page break cut its last row, which a browser splits rather than moves on.
            before = pieces[k - 1][1]
            split = before.page_height - before.bottom <= piece.top + _EDGE
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
        shift = offset - skip
        # Two parts of one cut row never both hold a number in one column (a number prints on one line):
        # if they do, the table merely ended near the margin and the next row is a row of its own.
        split = split and not any(r0 == skip and _NUMBER.search(text) and (offset - 1, c0) in origin
                                  and _NUMBER.search(grid[origin[(offset - 1, c0)]].text)
                                  for r0, c0, _, _, text in placed)
        if split and skip < len(rows) - 1:
            # The row the page break cut: its texts join the part above, and the rows under it move up one.
            shift -= 1
            rest = []
            for r0, c0, r1, c1, text in placed:
                above = origin.get((offset - 1, c0))
                if r0 != skip or above is None:
                    rest.append((r0, c0, r1, c1, text, None))
                    continue
                joined = _join(grid[above].text, text)
                for pos, o in origin.items():
                    if o == above:
                        grid[pos].text = joined
                if r1 > skip + 1:  # a merged cell that goes on below the cut row: the part above holds its text
                    rest.append((skip + 1, c0, r1, c1, joined, above))
            placed = rest
        else:
            placed = [(*p, None) for p in placed]
        for r0, c0, r1, c1, text, above in placed:
            if r0 < skip:
                continue
            for r in range(r0, max(r1, r0 + 1)):
                for c in range(c0, max(c1, c0 + 1)):
                    row = shift + r
                    grid[(row, c)] = Cell(text, row, c, copy=above is not None or (r, c) != (r0, c0), page=page)
                    origin[(row, c)] = above or (shift + r0, c0)
        offset = shift + len(rows) - 1
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

"""Render a report spec (tests/render.py) as the files reports are published in: a PDF written by
reportlab with its built-in CJK font (STSong-Light, no font file), ruled or drawn without lines, its
tables running over page breaks with a page footer between; a DOCX written by python-docx with merged
cells; and an image-only PDF (a scan: a page holding only a picture).

The layout (title, headings, prose, the three tables with their merged cells and printed labels) is
tests/render.py's, so `render.expected(spec)` says what a correct read gives.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from tests.render import ReportSpec, _Cell, _document, _seed, _Table

FONT = "STSong-Light"
_PAGE_W, _PAGE_H = 595.0, 842.0  # A4 in points
_LEFT, _TOP, _BOTTOM = 50.0, 60.0, 60.0
_WIDTH = _PAGE_W - 2 * _LEFT
_CELL_SIZE, _CELL_LEADING, _PAD = 7.5, 9.5, 2.0
# Column widths by table width (二: 4 columns, 三: 10, 四: 15), in points.
_COLUMNS = {4: [165, 110, 110, 110], 10: [40, 60, 85] + [44] * 7, 15: [33] * 15}
_HEADER_ROWS = {4: 0, 10: 3, 15: 3}  # rows repeated on the next page when `repeat_header`
FOOTERS = ("— {n} —", "第 {n} 页")


@dataclass(frozen=True)
class _Placed:
    cell: _Cell
    row: int
    col: int


def _placed(table: _Table) -> list[_Placed]:
    """Each printed cell with its grid position (rowspans and colspans laid out as HTML does)."""
    occupied: set[tuple[int, int]] = set()
    out = []
    for r, row in enumerate(table.rows):
        c = 0
        for cell in row:
            while (r, c) in occupied:
                c += 1
            occupied.update((r + dr, c + dc) for dr in range(cell.rs) for dc in range(cell.cs))
            out.append(_Placed(cell, r, c))
            c += cell.cs
    return out


def _tables(spec: ReportSpec, style: str) -> tuple[str, list[tuple[str, object]]]:
    """The title and the parts (heading, para, table), 二's blocks joined into one table."""
    doc = _document(spec, random.Random(_seed(spec, style)), "html_plain")
    parts: list[tuple[str, object]] = []
    for kind, payload in doc.parts:
        if kind == "tables":
            parts.append(("table", _Table(payload[0].width, [row for t in payload for row in t.rows])))
        else:
            parts.append((kind, payload))
    return doc.title, parts


# -- PDF ------------------------------------------------------------------------------------------


class _Pdf:
    def __init__(self, footer: str, page_h: float, repeat_header: bool) -> None:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont
        from reportlab.pdfgen import canvas

        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        self.width = pdfmetrics.stringWidth
        self.buffer = io.BytesIO()
        self.canvas = canvas.Canvas(self.buffer, pagesize=(_PAGE_W, page_h))
        self.page_h, self.footer, self.repeat_header = page_h, footer, repeat_header
        self.page = 1
        self.y = page_h - _TOP

    def lines(self, text: str, width: float, size: float) -> list[str]:
        """`text` wrapped to `width` character by character (CJK wraps anywhere); "\n" forces a break."""
        out = []
        for part in text.split("\n"):
            line = ""
            for ch in part:
                if line and self.width(line + ch, FONT, size) > width:
                    out.append(line)
                    line = ""
                line += ch
            out.append(line)
        return out

    def new_page(self) -> None:
        text = self.footer.format(n=self.page)
        self.canvas.setFont(FONT, 9)
        self.canvas.drawCentredString(_PAGE_W / 2, 30, text)
        self.canvas.showPage()
        self.page += 1
        self.y = self.page_h - _TOP

    def room(self, height: float) -> None:
        if self.y - height < _BOTTOM:
            self.new_page()

    def text(self, text: str, size: float, leading: float, centred: bool = False, indent: float = 0) -> None:
        for line in self.lines(text, _WIDTH - indent, size):
            self.room(leading)
            self.canvas.setFont(FONT, size)
            if centred:
                self.canvas.drawCentredString(_PAGE_W / 2, self.y - size, line)
            else:
                self.canvas.drawString(_LEFT + indent, self.y - size, line)
            self.y -= leading
        self.y -= leading / 3

    def table(self, table: _Table, ruled: bool) -> None:
        widths = _COLUMNS[table.width]
        xs = [_LEFT + sum(widths[:i]) for i in range(len(widths) + 1)]
        placed = _placed(table)
        n = len(table.rows)
        heights = [0.0] * n
        for p in sorted(placed, key=lambda p: p.cell.rs):
            w = xs[p.col + p.cell.cs] - xs[p.col] - 2 * _PAD
            need = len(self._cell_lines(p.cell, w)) * _CELL_LEADING + 2 * _PAD
            have = sum(heights[p.row:p.row + p.cell.rs])
            if need > have:
                heights[p.row + p.cell.rs - 1] += need - have
        # A page may break only between rows that no rowspan crosses.
        crossed = {r for p in placed for r in range(p.row + 1, p.row + p.cell.rs)}
        starts = [r for r in range(n) if r not in crossed]
        head = _HEADER_ROWS[table.width]
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else n
            chunk = sum(heights[start:end])
            if chunk > self.page_h - _TOP - _BOTTOM:
                raise ValueError(f"rows {start}-{end} of a table are taller than a page of {self.page_h} pt")
            if self.y - chunk < _BOTTOM:
                self.new_page()
                if self.repeat_header and head and start >= head:
                    self._rows(placed, xs, heights, 0, head, ruled)
            self._rows(placed, xs, heights, start, end, ruled)

    def _cell_lines(self, cell: _Cell, width: float) -> list[str]:
        if cell.kind == "value":
            return [cell.text.strip()]  # a number never wraps (it is shrunk to fit instead)
        return self.lines(cell.text, width, _CELL_SIZE)

    def _rows(self, placed: list[_Placed], xs: list[float], heights: list[float], start: int, end: int,
              ruled: bool) -> None:
        c = self.canvas
        top = self.y
        for p in placed:
            if not start <= p.row < end:
                continue
            y0 = top - sum(heights[start:p.row])
            h = sum(heights[p.row:p.row + p.cell.rs])
            x0, x1 = xs[p.col], xs[p.col + p.cell.cs]
            if ruled:
                c.setLineWidth(0.5)
                c.rect(x0, y0 - h, x1 - x0, h)
            lines = self._cell_lines(p.cell, x1 - x0 - 2 * _PAD)
            size = _CELL_SIZE
            if p.cell.kind == "value" and lines[0]:
                size = min(size, (x1 - x0 - 2 * _PAD) / self.width(lines[0], FONT, 1))
            c.setFont(FONT, size)
            y = y0 - _PAD - _CELL_SIZE
            for line in lines:
                c.drawCentredString((x0 + x1) / 2, y, line)
                y -= _CELL_LEADING
        self.y = top - sum(heights[start:end])

    def finish(self) -> bytes:
        self.new_page()
        self.canvas.save()
        return self.buffer.getvalue()


def render_pdf(spec: ReportSpec, *, ruled: bool = True, footer: str = FOOTERS[0], page_h: float = _PAGE_H,
               repeat_header: bool = False) -> bytes:
    """The report as a PDF with a text layer. A shorter `page_h` makes tables run over more pages."""
    title, parts = _tables(spec, "pdf")
    pdf = _Pdf(footer, page_h, repeat_header)
    pdf.text(title, 14, 22, centred=True)
    for kind, payload in parts:
        if kind == "heading":
            pdf.text(payload, 11, 18)
        elif kind == "para":
            pdf.text(payload, 10.5, 16, indent=21)
        else:
            pdf.table(payload, ruled)
            pdf.y -= 6
    return pdf.finish()


def render_image_pdf(pages: int = 2) -> bytes:
    """A scan: each page holds one picture and no text."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("L", (400, 560), 255)
    draw = ImageDraw.Draw(image)
    for y in range(40, 520, 24):
        draw.line((40, y, 360, y), fill=0, width=2)
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(_PAGE_W, _PAGE_H))
    for _ in range(pages):
        c.drawImage(ImageReader(image), 40, 60, width=515, height=720)
        c.showPage()
    c.save()
    return buffer.getvalue()


# -- DOCX -----------------------------------------------------------------------------------------


def _docx_table(document, table: _Table) -> None:
    grid = document.add_table(rows=len(table.rows), cols=table.width)
    grid.style = "Table Grid"
    for p in _placed(table):
        cell = grid.cell(p.row, p.col)
        if p.cell.rs > 1 or p.cell.cs > 1:
            cell = cell.merge(grid.cell(p.row + p.cell.rs - 1, p.col + p.cell.cs - 1))  # gridSpan, vMerge
        cell.text = p.cell.text


def render_docx(spec: ReportSpec, *, captions_as_paragraphs: bool = False) -> bytes:
    """The report as a Word file. `captions_as_paragraphs`: 二's blocks as tables of their own, each
    under its caption (第二十条第（一）项) printed as a paragraph, as many Word reports lay it out."""
    from docx import Document

    title, parts = _tables(spec, "docx")
    document = Document()
    document.add_heading(title, level=1)
    for kind, payload in parts:
        if kind == "heading":
            document.add_heading(payload, level=2)
        elif kind == "para":
            document.add_paragraph(payload)
        elif captions_as_paragraphs and payload.width == 4:
            block: list[list[_Cell]] = []
            for row in [*payload.rows, [_Cell("", "caption")]]:
                if row[0].kind == "caption":
                    if block:
                        _docx_table(document, _Table(4, block))
                    if row[0].text:
                        document.add_paragraph(row[0].text)
                    block = []
                else:
                    block.append(row)
        else:
            _docx_table(document, payload)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# -- DOC, WPS, RTF --------------------------------------------------------------------------------


def render_doc(spec: ReportSpec, to: str = "doc", **docx_options) -> bytes:
    """The report as a Word 97-2003 file (or `to="rtf"`), converted from render_docx's by LibreOffice
    itself, as such files come about. A WPS Writer file is the same bytes (LibreOffice reads .wps as
    Word 97). Needs LibreOffice on PATH."""
    from govreports.extract.convert import convert

    return convert(render_docx(spec, **docx_options), "report.docx", to=to)

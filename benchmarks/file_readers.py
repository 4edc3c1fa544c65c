"""PDF and DOCX reading against the HTML path on the same report specs, and pdfplumber against PyMuPDF.

    .venv/bin/python -m benchmarks.file_readers [--reports N]
    (PyMuPDF is not a dependency, AGPL: `.venv/bin/pip install pymupdf` to include it)

Renders N seeded specs (tests/render.py: both templates, blanks and not-given markers) as html_plain,
as a ruled PDF, as a PDF without lines (specs without blank cells: nothing prints where a blank was),
and as a DOCX (tests/filerender.py), in memory; then, per form, reads and parses every report
(read + transform.parse_document) and reports reports/s, PDF pages/s, and accuracy: the share of
reports whose facts equal render.expected(spec) exactly, and the share of cells right. For PDFs the
same assembly (extract/pdf.py) runs on the pages as pdfplumber and as PyMuPDF see them.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable

from govreports.extract.document import read_document
from govreports.extract.docx import read_docx
from govreports.extract.pdf import Line, PdfPage, Ruled, assemble, pdfplumber_pages
from govreports.transform.report import parse_document
from tests.filerender import render_docx, render_pdf
from tests.render import expected, random_spec, render
from tests.test_property import _read


def pymupdf_pages(data: bytes) -> list[PdfPage]:
    """The pages as PyMuPDF sees them: its table finder (a port of pdfplumber's) and its text lines."""
    import pymupdf

    pages = []
    with pymupdf.open(stream=data, filetype="pdf") as pdf:
        for number, page in enumerate(pdf, 1):
            out = PdfPage(number)
            found = page.find_tables().tables
            for t in found:
                cells = [(box, " ".join((text or "").split())) for row, texts in zip(t.rows, t.extract(), strict=True)
                         for box, text in zip(row.cells, texts, strict=True) if box]
                out.blocks.append(Ruled(t.bbox[1], t.bbox[0], t.bbox[2], cells))
            runs: dict[tuple[int, int], list] = {}
            for x0, y0, x1, y1, word, block, line, _ in page.get_text("words"):
                if not any(b.bbox[0] <= (x0 + x1) / 2 <= b.bbox[2] and b.bbox[1] <= (y0 + y1) / 2 <= b.bbox[3]
                           for b in found):
                    runs.setdefault((block, line), []).append((x0, y0, x1, y1, word))
            lines: list[Line] = []
            for words in sorted(runs.values(), key=lambda w: (round(w[0][1]), w[0][0])):
                run = (words[0][0], words[-1][2], " ".join(w[4] for w in words))
                if lines and abs(lines[-1].top - words[0][1]) < 2:
                    lines[-1].words.append(run)
                else:
                    lines.append(Line(words[0][1], words[0][3] - words[0][1], [run]))
            out.blocks.extend(lines)
            out.blocks.sort(key=lambda b: b.top)
            pages.append(out)
    return pages


def _score(spec, doc) -> tuple[bool, int, int]:
    want = expected(spec)
    try:
        got = _read(parse_document(doc).facts)
    except Exception:
        return False, 0, len(want)
    right = sum(got.get(k) == v for k, v in want.items())
    return right == len(want) and len(got) == len(want), right, len(want)


def _run(name: str, files: list[tuple[object, bytes]], read: Callable, pages: int | None) -> dict:
    t0 = time.perf_counter()
    docs = [read(data) for _, data in files]
    for doc in docs:
        parse_document(doc)
    seconds = time.perf_counter() - t0
    scores = [_score(spec, doc) for (spec, _), doc in zip(files, docs, strict=True)]
    row = {"form": name, "reports": len(files), "reports/s": len(files) / seconds,
           "pages/s": pages / seconds if pages else None,
           "exact": sum(s[0] for s in scores) / len(scores),
           "cells right": sum(s[1] for s in scores) / sum(s[2] for s in scores)}
    print(f"{name:28} {row['reports/s']:8.1f} reports/s  "
          + (f"{row['pages/s']:8.1f} pages/s  " if pages else " " * 19)
          + f"exact {row['exact']:6.1%}  cells right {row['cells right']:6.1%}", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.file_readers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=20)
    args = ap.parse_args(argv)
    specs = [random_spec(random.Random(f"files-{i}")) for i in range(args.reports)]
    full = [random_spec(random.Random(f"files-full-{i}"), allow_blanks=False) for i in range(args.reports)]
    html = [(s, render(s, "html_plain")) for s in specs]
    ruled = [(s, render_pdf(s)) for s in specs]
    unruled = [(s, render_pdf(s, ruled=False)) for s in full]
    docx = [(s, render_docx(s)) for s in specs]

    import pdfplumber

    def count(files: list[tuple[object, bytes]]) -> int:
        return sum(len(pdfplumber.open(io.BytesIO(data)).pages) for _, data in files)

    readers: dict[str, Callable[[bytes], list[PdfPage]]] = {"pdfplumber": pdfplumber_pages}
    try:
        import pymupdf  # noqa: F401

        readers["pymupdf"] = pymupdf_pages
    except ImportError:
        print("pymupdf not installed: pdfplumber only")
    _run("html_plain", html, read_document, None)
    _run("docx (python-docx)", docx, read_docx, None)
    for label, files in (("ruled pdf", ruled), ("pdf without lines", unruled)):
        n = count(files)
        for name, pages_of in readers.items():
            _run(f"{label} ({name})", files, lambda data, pages_of=pages_of: assemble(pages_of(data)), n)
    # The committed files made as agencies make them (tests/make_real_files.py), against their own pages.
    from tests.make_real_files import made_files

    made = made_files()
    for label, ext in (("page of a browser pdf", "pdf"), ("browser pdf (pdfplumber)", "pdf"),
                       ("libreoffice docx", "docx")):
        files = [(spec, render(spec, m.style) if label.startswith("page") else data)
                 for m, spec, data in made if m.file.endswith(ext)]
        _run(label, files, read_document, None if label.startswith(("page", "libre")) else count(files))


if __name__ == "__main__":
    main()

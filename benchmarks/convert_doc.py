"""Seconds per Word 97-2003 (.doc) report read through LibreOffice, one file after another.

    .venv/bin/python -m benchmarks.convert_doc [--reports N]

Renders N seeded specs (tests/render.py, both templates) as DOCX (tests/filerender.py) and converts
each to .doc with LibreOffice (not timed). Then, sequentially, times per file: the conversion back to
DOCX alone (extract/convert.convert: a fresh LibreOffice with a throwaway profile each time), and the
whole read (read_document + transform.parse_document), against reading the original DOCX; and checks
every .doc read gives render.expected(spec) exactly.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from govreports.extract.convert import convert, converter
from govreports.extract.document import read_document
from govreports.transform.report import parse_document
from tests.filerender import render_doc, render_docx
from tests.render import expected, random_spec
from tests.test_property import _read


def _times(files: list[bytes], work) -> list[float]:
    out = []
    for data in files:
        t0 = time.perf_counter()
        work(data)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.convert_doc", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=5)
    args = ap.parse_args(argv)
    if converter() is None:
        raise SystemExit("no LibreOffice on PATH: apt-get install --no-install-recommends libreoffice-writer-nogui")
    specs = [random_spec(random.Random(f"convert-bench-{i}")) for i in range(args.reports)]
    docx = [render_docx(s) for s in specs]
    doc = [render_doc(s) for s in specs]
    exact = sum(_read(parse_document(read_document(d)).facts) == expected(s) for s, d in zip(specs, doc, strict=True))
    rows = {"doc -> docx (LibreOffice only)": _times(doc, convert),
            "doc: read + parse": _times(doc, lambda d: parse_document(read_document(d))),
            "docx: read + parse": _times(docx, lambda d: parse_document(read_document(d)))}
    print(f"{args.reports} reports, {sum(map(len, doc)) / len(doc) / 1024:.0f} KB per .doc; "
          f"{exact}/{args.reports} .doc reads exactly as printed")
    for name, times in rows.items():
        print(f"{name:32} median {statistics.median(times):6.2f} s  min {min(times):6.2f}  max {max(times):6.2f}")


if __name__ == "__main__":
    main()

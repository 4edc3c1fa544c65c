"""Make the report files the way agencies really make them, from the renderer's own pages: a report page
printed to PDF by a headless browser (Chromium: its own pagination breaks the tables across pages, with
and without its running header and footer of date, title, URL and `1/3`), and a page converted to DOCX
and to DOC by LibreOffice.

    .venv/bin/python -m tests.make_real_files      # rewrites tests/fixtures/real_files/

The files are committed, so the tests that read them (tests/test_real_files.py) need neither Chromium
nor LibreOffice. What varies between runs: the PDFs' creation dates and document ids, and whatever
another Chromium or LibreOffice version lays out differently; the specs (and so the expected values)
do not. tests/test_real_files.py also converts a page with LibreOffice at test time, where it is
installed, so a converter that changed is noticed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from tests.render import random_spec, render

OUT = Path(__file__).resolve().parent / "fixtures" / "real_files"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Made(NamedTuple):
    """One fixture: the file, and the spec it was rendered from (tests.render.random_spec's arguments)."""

    file: str
    maker: str  # chromium | chromium+header | soffice-docx | soffice-doc
    style: str  # the tests/render.py style of the page it was made from
    seed: int
    template: str
    allow_blanks: bool


# (style, seed, template, allow_blanks): pages of both templates, plain and Word-pasted markup, blanks too.
PAGES = (("html_plain", 101, "2021", True), ("html_word", 102, "2019", False), ("html_plain", 103, "2019", False),
         ("html_word", 104, "2021", True))


def spec_of(made: Made):
    return random_spec(random.Random(made.seed), made.template, allow_blanks=made.allow_blanks)


def made_files() -> list[tuple[Made, object, bytes]]:
    """The committed fixtures: each with its spec and its bytes."""
    made = [Made(**m) for m in json.loads((OUT / "manifest.json").read_text(encoding="utf-8"))]
    return [(m, spec_of(m), (OUT / m.file).read_bytes()) for m in made]


def _font_css() -> str:
    """The bundled CJK font for the browser (the machine may have none): the printed text layer then maps
    its glyphs back to characters as a real report's does."""
    import cvttf_NotoSansCJK_Regular

    font = Path(cvttf_NotoSansCJK_Regular.get_TTF_path()).as_uri()
    return (f"<style>@font-face {{ font-family: ReportCJK; src: url('{font}'); }} "
            "body, td, th, p, span, font, h1, h2, h3 { font-family: ReportCJK !important; }</style>")


def page_html(made: Made) -> str:
    html = render(spec_of(made), made.style).decode("utf-8")
    head = html.find("</head>")
    return html[:head] + _font_css() + html[head:] if head >= 0 else _font_css() + html


def browser() -> str | None:
    return next(filter(None, map(shutil.which, BROWSERS)), None)


def print_pdf(html: str, header_footer: bool, tmp: Path) -> bytes:
    src, out = tmp / "page.html", tmp / "page.pdf"
    src.write_text(html, encoding="utf-8")
    cmd = [browser() or "chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={out}",
           *([] if header_footer else ["--no-pdf-header-footer"]), src.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out.read_bytes()


def convert(html: str, to: str, tmp: Path) -> bytes:
    """The page as LibreOffice Writer saves it: `to` is docx or doc."""
    src = tmp / "page.html"
    src.write_text(html, encoding="utf-8")
    filters = {"docx": "docx:MS Word 2007 XML", "doc": "doc:MS Word 97"}
    cmd = [shutil.which("soffice") or "soffice", f"-env:UserInstallation={(tmp / 'profile').as_uri()}", "--headless",
           "--norestore", "--infilter=HTML (StarWriter)", "--convert-to", filters[to], "--outdir", str(tmp / "out"),
           str(src)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp)})
    return (tmp / "out" / f"page.{to}").read_bytes()


def make(out: Path = OUT) -> list[Made]:
    out.mkdir(parents=True, exist_ok=True)
    made: list[Made] = []
    for style, seed, template, blanks in PAGES:
        # One PDF a page (a browser PDF embeds its font: some 600 KB), with the running header and footer
        # on every other page.
        browser_maker = "chromium+header" if seed % 2 == 0 else "chromium"
        for maker, ext in ((browser_maker, "pdf"), ("soffice-docx", "docx"), ("soffice-doc", "doc")):
            m = Made(f"{style}-{template}-{seed}-{maker.replace('+', '-')}.{ext}", maker, style, seed, template, blanks)
            html = page_html(m)
            with tempfile.TemporaryDirectory() as tmp:
                data = (print_pdf(html, maker == "chromium+header", Path(tmp)) if ext == "pdf"
                        else convert(html, ext, Path(tmp)))
            (out / m.file).write_bytes(data)
            made.append(m)
    (out / "manifest.json").write_text(json.dumps([m._asdict() for m in made], ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    return made


if __name__ == "__main__":
    for m in make():
        print(m.file, (OUT / m.file).stat().st_size)

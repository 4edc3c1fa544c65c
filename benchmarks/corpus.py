"""A reproducible in-memory corpus of realistic report pages for the throughput benchmark.

Pages are rendered by tests/render.py from random specs (both templates, blanks and markers
included) in the HTML styles crawled pages come in, padded with page chrome (navigation lists,
footer, inline CSS/JS) to a size drawn between 30 and 100 KB, as published pages are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.render import ReportSpec, random_spec, render

# style -> share of the corpus
MIX: tuple[tuple[str, float], ...] = (
    ("html_cms", 0.4),  # CMS page: metadata box, layout table, report nested in it
    ("html_word", 0.2),  # Word-pasted report inside a page with chrome
    ("html_plain", 0.2),  # clean tables inside a page with chrome
    ("html_gbk", 0.2),  # as html_plain, GBK-encoded with no charset declared anywhere
)
MIN_KB, MAX_KB = 30, 100
SEED = 20250131


@dataclass(frozen=True, slots=True)
class Page:
    style: str
    spec: ReportSpec
    data: bytes


def _sized(spec: ReportSpec, style: str, target: int) -> bytes:
    """Render with chrome padded so that the page comes out near `target` bytes."""
    base = render(spec, style, chrome_kb=1)
    if len(base) >= target:
        return base
    pad_kb = 1 + round((target - len(base)) / 1024)
    if style == "html_cms":
        pad_kb += 6  # the CMS frame (box, breadcrumb, side bar) counts towards its chrome
    return render(spec, style, chrome_kb=pad_kb)


def make_corpus(n: int, seed: int = SEED) -> list[Page]:
    rng = random.Random(seed)
    styles = [style for style, _ in MIX]
    weights = [share for _, share in MIX]
    pages = []
    for _ in range(n):
        style = rng.choices(styles, weights)[0]
        spec = random_spec(rng)
        target = rng.randint(MIN_KB * 1024, MAX_KB * 1024)
        pages.append(Page(style, spec, _sized(spec, style, target)))
    return pages

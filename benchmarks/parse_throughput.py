"""Parse throughput on one core: our full parse against pandas.read_html and bare lxml.

    .venv/bin/python -m benchmarks.parse_throughput [--pages N] [--json FILE] [--profile]

Renders N realistic pages (benchmarks/corpus.py: 30-100 KB each with page chrome; CMS, Word-pasted,
plain and GBK-without-charset pages; both templates) into memory with a fixed seed, pins the
process to one CPU, and times over the same pages, in the same run:

  (a) full   flows.parse.parse_report: read_document (decode + page) + recognise + checks, and the typed
             long frames (facts and checks) built per batch of 100 pages, as the pipeline builds them
  (b) pandas pandas.read_html(io.StringIO(text), flavor="lxml") on the decoded text: tables only
  (c) lxml   lxml.html.document_fromstring(bytes): the floor, parsing markup and nothing else
  (d) bs4    BeautifulSoup(text, "lxml") on a subset: is bs4 affordable on the hot path?

Goals: (a) at least as fast as (b), and within 3x of (c).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import sys
import time
import warnings
from collections.abc import Callable, Sequence

# One thread everywhere. numpy/pandas are imported in main(), after this has run.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "ARROW_NUM_THREADS"):
    os.environ[_var] = "1"

GOAL_VS_READ_HTML = 1.0  # full / read_html
GOAL_VS_LXML = 3.0  # full / lxml
FRAME_BATCH = 100  # pages per typed frame, as flows.pipeline.PARSE_BATCH


def _pin() -> str:
    if hasattr(os, "sched_setaffinity"):
        try:
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})
            return f"pinned to CPU {cpu}"
        except OSError as exc:
            return f"not pinned ({exc})"
    return "not pinned (no sched_setaffinity)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _time(fn: Callable[[object], object], items: Sequence[object]) -> tuple[float, list[object]]:
    out = []
    start = time.perf_counter()
    for item in items:
        out.append(fn(item))
    return time.perf_counter() - start, out


def _row(name: str, seconds: float, n: int, nbytes: int) -> dict[str, float | int | str]:
    return {
        "name": name,
        "pages": n,
        "seconds": round(seconds, 4),
        "pages_per_s": round(n / seconds, 2),
        "mb_per_s": round(nbytes / seconds / 1e6, 3),
        "ms_per_page": round(1000 * seconds / n, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=1000, help="pages to generate and parse (default 1000)")
    ap.add_argument("--bs4-pages", type=int, default=100, help="subset timed with BeautifulSoup (default 100)")
    ap.add_argument("--profile", action="store_true", help="cProfile the full parse: top 15 by cumtime")
    ap.add_argument("--profile-pages", type=int, default=200, help="pages in the profile run (default 200)")
    ap.add_argument("--stages", action="store_true",
                    help="also time the stages of the full parse one by one (decode, page, recognise, frame, checks)")
    ap.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    args = ap.parse_args(argv)

    pinned = _pin()

    import bs4
    import lxml
    import lxml.html
    import pandas as pd

    from benchmarks.corpus import make_corpus
    from govreports.extract.decode import decode
    from govreports.flows.parse import parse_report, tune_gc
    from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, frame_from_rows
    from govreports.transform.report import ParseFailure
    from tests.render import expected

    t0 = time.perf_counter()
    pages = make_corpus(args.pages)
    gen_s = time.perf_counter() - t0
    blobs = [p.data for p in pages]
    texts = [decode(b).text for b in blobs]  # (b) and (d) get decoded text, as the brief of read_html says
    nbytes = sum(len(b) for b in blobs)
    sizes = sorted(len(b) for b in blobs)
    print(f"{len(pages)} pages generated in {gen_s:.1f}s: {nbytes / 1e6:.1f} MB, "
          f"{sizes[0] / 1024:.0f}-{sizes[-1] / 1024:.0f} KB (median {sizes[len(sizes) // 2] / 1024:.0f} KB); "
          f"{pinned}; Python {platform.python_version()}, pandas {pd.__version__}, lxml {lxml.__version__}, "
          f"bs4 {bs4.__version__}", flush=True)
    mix: dict[str, int] = {}
    for p in pages:
        key = f"{p.style}/{p.spec.template}"
        mix[key] = mix.get(key, 0) + 1
    print("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(mix.items())), flush=True)

    def full(data: bytes):
        try:
            return parse_report(data)
        except ParseFailure as exc:
            return exc

    def read_html(text: str):
        try:
            return pd.read_html(io.StringIO(text), flavor="lxml")
        except ValueError:  # "No tables found"
            return []

    def bare_lxml(data: bytes):
        return lxml.html.document_fromstring(data)

    def soup(text: str):
        return bs4.BeautifulSoup(text, "lxml")

    # Warm up caches and imports on a few pages (label tables, regexes), outside the timings.
    for i in range(min(5, len(pages))):
        full(blobs[i])
        read_html(texts[i])
        bare_lxml(blobs[i])
    tune_gc()  # the collector settings of the pipeline's parse processes, for all three

    results = []
    s_lxml, _ = _time(bare_lxml, blobs)
    results.append(_row("lxml document_fromstring (floor)", s_lxml, len(blobs), nbytes))
    print(f"  lxml done in {s_lxml:.1f}s", flush=True)
    def full_batches(blobs: Sequence[bytes]) -> tuple[float, list[object]]:
        out: list[object] = []
        start = time.perf_counter()
        for i in range(0, len(blobs), FRAME_BATCH):
            batch = [full(b) for b in blobs[i:i + FRAME_BATCH]]
            ok = [r for r in batch if not isinstance(r, ParseFailure)]
            frame_from_rows([row for r in ok for row in r.fact_rows], FACT_COLUMNS)
            frame_from_rows([row for r in ok for row in r.check_rows], CHECK_COLUMNS)
            out.extend(batch)
        return time.perf_counter() - start, out

    s_full, parsed = full_batches(blobs)
    results.append(_row("full parse_report", s_full, len(blobs), nbytes))
    print(f"  full parse done in {s_full:.1f}s", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s_pd, _ = _time(read_html, texts)
    results.append(_row("pandas.read_html (lxml)", s_pd, len(texts), nbytes))
    print(f"  read_html done in {s_pd:.1f}s", flush=True)
    k = min(args.bs4_pages, len(texts))
    s_bs4, _ = _time(soup, texts[:k])
    results.append(_row(f"bs4 BeautifulSoup lxml (first {k})", s_bs4, k, sum(len(b) for b in blobs[:k])))

    # Correctness of (a) on the same pages, outside the timing.
    failures = sum(isinstance(r, ParseFailure) for r in parsed)
    exact = 0
    for page, result in zip(pages, parsed, strict=True):
        if isinstance(result, ParseFailure):
            continue
        f = result.facts
        got = {
            (m, a if isinstance(a, str) else ""): (s, None if v is None or math.isnan(v) else v)
            for m, a, s, v in zip(f["metric"], f["applicant"], f["value_status"], f["value"], strict=True)
        }
        exact += got == expected(page.spec) and len(f) == len(got)

    ratio_pd = s_full / s_pd
    ratio_lxml = s_full / s_lxml
    ms_full = 1000 * s_full / len(blobs)
    ms_bs4 = 1000 * s_bs4 / k if k else float("nan")
    print()
    print(f"{'':36s} {'pages/s':>9s} {'MB/s':>8s} {'ms/page':>9s}")
    for r in results:
        print(f"{r['name']:36s} {r['pages_per_s']:9.1f} {r['mb_per_s']:8.2f} {r['ms_per_page']:9.2f}")
    print()
    print(f"full / read_html = {ratio_pd:.2f}  (goal <= {GOAL_VS_READ_HTML:.0f}: "
          f"{'met' if ratio_pd <= GOAL_VS_READ_HTML else 'NOT met'})")
    print(f"full / lxml      = {ratio_lxml:.2f}  (goal <= {GOAL_VS_LXML:.0f}: "
          f"{'met' if ratio_lxml <= GOAL_VS_LXML else 'NOT met'})")
    print(f"bs4 parse alone  = {ms_bs4:.1f} ms/page = {ms_bs4 / ms_full:.2f}x our whole parse")
    print(f"full parse: {len(pages) - failures}/{len(pages)} pages parsed, {exact} exactly as rendered")

    stages = None
    if args.stages:
        from govreports.extract.page import read_page
        from govreports.transform.checks import check_records
        from govreports.transform.tables import recognise

        ok = [r for r in parsed if not isinstance(r, ParseFailure)]
        s_dec, decoded = _time(decode, blobs)
        s_page, page_objs = _time(lambda d: read_page(d.text), decoded)
        s_rec, _ = _time(lambda p: recognise(p.tables, p.year, p.complete), page_objs)
        # The checks' inputs from the fact rows, as parse_report hands them over.
        s_checks, _ = _time(lambda r: check_records(r.meta.report_id, ((f.metric, f.applicant, f.value, f.value_status,
                                                                         f.template) for f in r.fact_rows)), ok)
        batches = [ok[i:i + FRAME_BATCH] for i in range(0, len(ok), FRAME_BATCH)]
        s_frame, _ = _time(lambda rs: (frame_from_rows([x for r in rs for x in r.fact_rows], FACT_COLUMNS),
                                       frame_from_rows([x for r in rs for x in r.check_rows], CHECK_COLUMNS)),
                           batches)
        n_ok = max(len(ok), 1)
        stages = {
            "decode": 1000 * s_dec / len(blobs),
            "read_page (lxml parse, table grids, visible text, metadata)": 1000 * s_page / len(blobs),
            "recognise (cells -> metrics)": 1000 * s_rec / len(blobs),
            "check_records (identities)": 1000 * s_checks / n_ok,
            f"frames (facts and checks, per {FRAME_BATCH} pages)": 1000 * s_frame / n_ok,
        }
        print("\nstages of the full parse, timed one by one (ms/page):")
        for name, ms in stages.items():
            print(f"  {name:62s} {ms:6.2f}")
        print(f"  {'sum':62s} {sum(stages.values()):6.2f}   (whole parse_report: {ms_full:.2f})")

    profile_top = None
    if args.profile:
        n = min(args.profile_pages, len(blobs))
        prof = cProfile.Profile()
        prof.enable()
        for b in blobs[:n]:
            full(b)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(15)
        profile_top = buf.getvalue()
        print(f"\nprofile of the full parse over {n} pages (top 15 by cumtime):")
        print(profile_top)

    if args.json:
        out = {
            "pages": len(pages),
            "bytes": nbytes,
            "size_kb": {"min": sizes[0] / 1024, "median": sizes[len(sizes) // 2] / 1024, "max": sizes[-1] / 1024},
            "mix": mix,
            "machine": {
                "nproc": os.cpu_count(),
                "cpu": _cpu_model(),
                "pinned": pinned,
                "python": platform.python_version(),
                "pandas": pd.__version__,
                "lxml": lxml.__version__,
                "bs4": bs4.__version__,
            },
            "results": results,
            "ratios": {"full_over_read_html": round(ratio_pd, 3), "full_over_lxml": round(ratio_lxml, 3)},
            "goals": {
                "full_at_least_as_fast_as_read_html": ratio_pd <= GOAL_VS_READ_HTML,
                "full_within_3x_of_lxml": ratio_lxml <= GOAL_VS_LXML,
            },
            "correctness": {"parse_failures": failures, "exact_round_trips": exact},
            "stages_ms_per_page": stages,
            "profile_top15": profile_top,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

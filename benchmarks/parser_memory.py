"""Peak memory and seconds of one parse, for the worst pages: the hostile pages of tests/test_hostile.py,
a 1 MB span bomb (500 tables, each spanning 500 rows by 64 columns), and pages of ordinary rows up to
and past the fetch cap, built in memory.

    .venv/bin/python -m benchmarks.parser_memory [--only SUBSTRING] [--json FILE]

Each page is read and parsed (read_document, then parse_document, as the pipeline does) in a fresh interpreter, so
that no page inherits another's heap. The child builds its page, then resets its peak resident set
(/proc/self/clear_refs) and parses: "peak" is the growth of VmHWM during the parse (lxml's C
allocations included), "maxrss" the child's whole ru_maxrss (interpreter, page and parse). The bound
is the issue's: 200 MB plus 10x the page's size. The child's address space is capped at 6 GB beyond
its start, so a bomb reports MemoryError instead of taking the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MB = 1_000_000
AS_CAP = 6_000 * MB
TIMEOUT = 600


def _hostile_cases() -> dict:
    from govreports.extract.cells import MAX_PAGE_CELLS, MAX_PAGE_TAGS
    from tests import hostile_inputs as h
    from tests import test_hostile as t

    cases = {p.id: p.values[0] for p in (*t.HUGE, *t.LABELS)}
    cases["11-mb-paragraph"] = lambda: h.before_tables(h.html(), "<p>" + "a" * 11_000_000 + "</p>")
    cases["span-bomb-500-tables-1mb"] = h.span_bomb
    for mb in (5, 20, 50):
        cases[f"ordinary-rows-{mb}mb"] = lambda mb=mb: h.ordinary_rows(mb * MB)
    cases["ordinary-rows-fetch-cap"] = lambda: h.ordinary_rows(20 * 2**20)
    # Just inside the page's budget (extract/cells.py): the most a page can cost and still be read.
    cases["ordinary-rows-at-the-cell-budget"] = lambda: h.ordinary_rows((MAX_PAGE_CELLS - 5_000) // 8 * 128)
    at_the_budget = {"br": ("", "<br>" * (MAX_PAGE_TAGS - 5_000), ""),
                     "p": ("", "<p>x" * (MAX_PAGE_TAGS - 5_000), ""),
                     "td": ("<table><tr>", "<td>1" * (MAX_PAGE_CELLS - 5_000), "</table>")}
    for name, parts in at_the_budget.items():
        cases[f"{name}-at-the-budget"] = lambda parts=parts: h.before_tables(h.html(), "".join(parts))
    return cases


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _child(name: str) -> dict:
    from govreports.extract.document import ParseFailure, read_document
    from govreports.transform.report import parse_document

    data = _hostile_cases()[name]()
    data = data.encode() if isinstance(data, str) else data
    size = _status_kb("VmSize") * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + AS_CAP, resource.RLIM_INFINITY))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        report = parse_document(read_document(data))  # what parse_report does
        outcome = f"report, {len(report.fact_rows)} facts"
    except ParseFailure as exc:
        outcome = f"ParseFailure: {exc}"[:160]
    except MemoryError:
        outcome = "MemoryError (address space cap)"
    seconds = time.perf_counter() - t0
    peak = (_status_kb("VmHWM") - base) * 1024 / MB
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    return {"page": name, "mb": round(len(data) / MB, 2), "seconds": round(seconds, 2), "peak_mb": round(peak),
            "maxrss_mb": round(maxrss), "bound_mb": round(200 + 10 * len(data) / MB), "outcome": outcome}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="pages whose name contains this")
    ap.add_argument("--top", type=int, default=0, help="print only the N pages of highest peak (0: all)")
    ap.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child)))
        return 0
    rows = []
    for name in _hostile_cases():
        if args.only and args.only not in name:
            continue
        try:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.parser_memory", "--child", name],
                                  capture_output=True, text=True, timeout=TIMEOUT)
            row = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {
                "page": name, "outcome": f"child exit {proc.returncode}: {proc.stderr.strip()[-160:]}"}
        except subprocess.TimeoutExpired:
            row = {"page": name, "outcome": f"killed after {TIMEOUT} s"}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    shown = sorted(rows, key=lambda r: -r.get("peak_mb", 1e9))[: args.top or None]
    print("\n| page | MB | seconds | peak growth MB | bound MB | ru_maxrss MB | outcome |")
    print("|---|---|---|---|---|---|---|")
    for r in shown:
        print(f"| {r['page']} | {r.get('mb', '')} | {r.get('seconds', '')} | {r.get('peak_mb', '')} | "
              f"{r.get('bound_mb', '')} | {r.get('maxrss_mb', '')} | {r['outcome']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

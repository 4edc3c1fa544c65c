"""The fetch log after many nights: what reading it costs in time and memory as the history grows.

    .venv/bin/python -m benchmarks.fetchlog_history [--urls 117000] [--nights 20] [--json FILE]

A nightly run logs one attempt per page and listing page, so the log grows by the site every night
and every run reads it: the latest attempt per URL (for conditional requests: `last_success`) and
one row per stored version (`versions`, for the first fetch time of the pages to parse). This writes
a log of `urls` × `nights` attempts (one merged file, as compaction leaves it; 117,000 URLs is a
10k-report site's pages and listings, ten times over) to a scratch directory, lets compaction build
its state (the merged files' aggregates) on the next night's files, adds one more night as a crawl
leaves it, then times each read in a child process of its own (so that each peak resident memory is
the read's alone): with the state, then without it (as before round 5's state, or when it is lost).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_log(root: Path, urls: int, nights: int, first_night: int = 0, merged: bool = True) -> int:
    """`urls` report URLs fetched once, then answered 304 every night after; returns the bytes written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from govreports.extract.fetchlog import LOG_SCHEMA

    names = [f"http://127.0.0.1:8000/9{i // 6:05d}-jtj/ndbg/{2019 + i % 6}.html" for i in range(urls)]
    agencies = pa.array([n.split("/")[3] for n in names])
    years = pa.array([2019 + i % 6 for i in range(urls)], pa.int32())
    shas = pa.array([f"{i:064x}" for i in range(urls)])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stamp = f"2026{1 + first_night // 28:02d}{1 + first_night % 28:02d}T000000000000Z"
    path = root / (f"{stamp}-compact-history.parquet" if merged else f"{stamp}-night.parquet")
    with pq.ParquetWriter(path, LOG_SCHEMA, compression="zstd") as writer:
        for night in range(first_night, first_night + nights):
            first = night == 0
            times = [start + dt.timedelta(days=night, microseconds=i) for i in range(urls)]
            writer.write_table(pa.table({
                "url": pa.array(names), "final_url": pa.array(names), "agency_id": agencies, "year": years,
                "kind": pa.array(["report"] * urls), "status": pa.array([200 if first else 304] * urls, pa.int32()),
                "etag": pa.nulls(urls, pa.string()),
                "last_modified": pa.array(["Mon, 06 Jan 2025 08:00:00 GMT"] * urls),
                "sha256": shas, "bytes": pa.nulls(urls, pa.int64()),
                "fetched_at": pa.array(times, pa.timestamp("us", tz="UTC")),
                "outcome": pa.array(["new" if first else "not_modified"] * urls), "error": pa.nulls(urls, pa.string()),
                "declared_charset": pa.array(["utf-8"] * urls), "link_agency": pa.nulls(urls, pa.string()),
            }, schema=LOG_SCHEMA), row_group_size=131_072)
    return path.stat().st_size


def child(root: str, what: str) -> None:
    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(root)
    t0 = time.perf_counter()
    if what == "last_success":
        found = log.last_success("http://127.0.0.1:8000/900000-jtj/ndbg/2019.html") is not None
        rows = None
    else:
        rows = len(log.versions())
        found = rows > 0
    seconds = time.perf_counter() - t0
    print(json.dumps({"read": what, "seconds": round(seconds, 2), "found": found, "rows": rows,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", type=int, default=117_000)
    ap.add_argument("--nights", type=int, default=20)
    ap.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "READ"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    root = Path(tempfile.mkdtemp(prefix="govreports-fetchlog-"))
    try:
        t0 = time.perf_counter()
        size = write_log(root, args.urls, args.nights)
        print(f"log: {args.urls * args.nights:,} attempts ({args.urls:,} URLs x {args.nights} nights), "
              f"{size / 2**20:.1f} MB, written in {time.perf_counter() - t0:.1f} s", flush=True)
        from govreports.extract.fetchlog import FetchLog

        # The next night, as two crawl files, compacted: compaction finds no state and builds it from
        # every merged file, once. Then one more night, not yet compacted.
        write_log(root, args.urls // 2, 1, first_night=args.nights, merged=False)
        write_log(root, args.urls // 2, 1, first_night=args.nights + 1, merged=False)
        t0 = time.perf_counter()
        FetchLog(root).compact(min_files=2)
        print(f"  first compaction, building the state: {time.perf_counter() - t0:.2f} s", flush=True)
        write_log(root, args.urls, 1, first_night=args.nights + 2, merged=False)
        results = []
        for state in ("with the state", "without it"):
            if state == "without it":
                shutil.rmtree(root / "_state")
            for what in ("last_success", "versions"):
                out = subprocess.run([sys.executable, "-m", "benchmarks.fetchlog_history", "--child", str(root),
                                      what], cwd=REPO, capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1]) | {"state": state}
                results.append(result)
                print(f"  {state:15s} {what:13s} {result['seconds']:6.2f} s, peak RSS {result['peak_rss_mb']} MB "
                      "(the whole child process, imports included)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "fetchlog_history", "urls": args.urls,
                                               "nights": args.nights, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The fetch log after many nights: what reading and compacting it costs in time and memory.

    .venv/bin/python -m benchmarks.fetchlog_history [--urls 117000] [--nights 20] [--json FILE]

A nightly run logs one attempt per page and listing page, so the log grows by the site every night
and every run reads it: the latest attempt per URL (for conditional requests: the map behind
`last_success`), one row per stored version (`versions`, for the first fetch time of the pages to
parse), and compaction merges the night's files into the history. This writes a log of `urls` ×
`nights` attempts as one merged file (as compaction leaves it; 117,000 URLs is a 100k-report site's
pages and listings) plus one more night as a crawl leaves it (a file per 64 agencies, about 450
attempts each), then times each step in a child process of its own, so that each peak resident
memory is that step's alone (imports included: the `imports` row is a child that only imports). The
log is written by a child too: on Linux a child's peak RSS starts from its parent's at the fork.
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
NIGHT_FILE_ATTEMPTS = 450  # a crawl's file: 64 agencies of about 7 URLs


def night_table(urls: int, night: int, offset: int = 0):  # -> pa.Table
    """`urls` report URLs (from `offset`), fetched on night 0, answered 304 every night after."""
    import pyarrow as pa

    from govreports.extract.fetchlog import LOG_SCHEMA

    idx = range(offset, offset + urls)
    names = [f"http://127.0.0.1:8000/9{i // 6:05d}-jtj/ndbg/{2019 + i % 6}.html" for i in idx]
    first = night == 0
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=night)
    return pa.table({
        "url": names, "final_url": names, "agency_id": [n.split("/")[3] for n in names],
        "year": pa.array([2019 + i % 6 for i in idx], pa.int32()), "kind": ["report"] * urls,
        "status": pa.array([200 if first else 304] * urls, pa.int32()), "etag": pa.nulls(urls, pa.string()),
        "last_modified": ["Mon, 06 Jan 2025 08:00:00 GMT"] * urls, "sha256": [f"{i:064x}" for i in idx],
        "bytes": pa.nulls(urls, pa.int64()),
        "fetched_at": pa.array([start + dt.timedelta(microseconds=i) for i in idx], pa.timestamp("us", tz="UTC")),
        "outcome": ["new" if first else "not_modified"] * urls, "error": pa.nulls(urls, pa.string()),
        "declared_charset": ["utf-8"] * urls, "link_agency": pa.nulls(urls, pa.string()),
    }, schema=LOG_SCHEMA)


def write_log(root: Path, urls: int, nights: int) -> int:
    """The history as one merged file, then one night as a crawl's files; returns the bytes written."""
    import pyarrow.parquet as pq

    from govreports.extract.fetchlog import LOG_SCHEMA

    root.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(root / "20260101T000000000000Z-compact-history.parquet", LOG_SCHEMA,
                          compression="zstd") as writer:
        for night in range(nights):
            writer.write_table(night_table(urls, night), row_group_size=131_072)
    for n, offset in enumerate(range(0, urls, NIGHT_FILE_ATTEMPTS)):
        table = night_table(min(NIGHT_FILE_ATTEMPTS, urls - offset), nights, offset)
        pq.write_table(table, root / f"202603{n // 1000 + 1:02d}T{n % 1000:06d}000000Z-night.parquet",
                       compression="zstd")
    return sum(p.stat().st_size for p in root.glob("*.parquet"))


def child(root: str, what: str) -> None:
    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(root)
    t0 = time.perf_counter()
    detail: object = None
    if what == "last_success":  # the first question builds the map of every URL
        detail = log.last_success("http://127.0.0.1:8000/900000-jtj/ndbg/2019.html") is not None
    elif what == "versions":
        detail = len(log.versions())
    elif what == "compact":
        detail = log.compact()
    elif what.startswith("write:"):  # here, not in the parent: a child's peak RSS starts from its parent's
        urls, nights = map(int, what.split(":")[1:])
        detail = write_log(Path(root), urls, nights)
    seconds = time.perf_counter() - t0
    print(json.dumps({"step": what, "seconds": round(seconds, 2), "result": detail,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def step(root: Path, what: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.fetchlog_history", "--child", str(root), what],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", type=int, default=117_000)
    ap.add_argument("--nights", type=int, default=20)
    ap.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "STEP"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    root = Path(tempfile.mkdtemp(prefix="govreports-fetchlog-")) / "fetch_log"
    try:
        t0 = time.perf_counter()
        size = step(root, f"write:{args.urls}:{args.nights}")["result"]
        files = len(list(root.glob("*.parquet")))
        print(f"log: {args.urls * (args.nights + 1):,} attempts ({args.urls:,} URLs x {args.nights} nights merged "
              f"+ 1 night in {files - 1} files), {size / 2**20:.1f} MB, written in {time.perf_counter() - t0:.1f} s",
              flush=True)
        results = []
        for what in ("imports", "last_success", "versions", "compact"):  # compact last: it changes the log
            result = step(root, what)
            results.append(result)
            print(f"  {what:13s} {result['seconds']:6.2f} s, peak RSS {result['peak_rss_mb']} MB "
                  f"(result: {result['result']})", flush=True)
        size = sum(p.stat().st_size for p in root.glob("*.parquet"))
        print(f"  after compaction: {len(list(root.glob('*.parquet')))} file, {size / 2**20:.1f} MB", flush=True)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "fetchlog_history", "urls": args.urls,
                                               "nights": args.nights, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

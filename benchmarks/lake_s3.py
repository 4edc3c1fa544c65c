"""The lake on an object store: the Delta lake on moto's S3 server (loopback, another process) and on local disk.

    nice -n 5 .venv/bin/python -m benchmarks.lake_s3 --reports 10000 --commits 100 --old-layout 10000,100000 \\
        --json /tmp/lake-s3-10k.json

For N reports of real bundles (tests/loadhelp.py `bundle()`: the parse stage's own rows; N/6 agencies ×
2019–2024, values varied), loaded in `--commits` nightly-sized commits of N/commits reports each (Lake.write:
stage, merge, commit), on each store: load time per commit (median, p90, last), objects in the lake
(`file_count`), a LIST of the whole lake (`file_count`'s time) and a `snapshot`, a full `build` of the DuckDB
warehouse, and an incremental `build` after one more commit. On S3 the server's request log gives the requests
(by method) of that one commit and of the incremental build. Then, for the layout before issue 17 (a
part.parquet per dataset, agency and year, and a .sha256 beside each: 6 objects a report), that many tiny
objects are PUT under another prefix (and written as files on disk) and LISTed, for each `--old-layout` N.

`--from-lake DIR` takes a lake a reparse built instead (`benchmarks.scale reparse --keep`: a million reports'
lake), copied to a scratch directory and uploaded to moto, and on each store measures the LIST, the snapshot, a
full build, one nightly-sized commit (`--commits` is then its size in reports) and the incremental build.

moto keeps objects in its process's memory and answers over loopback with no network latency and no request
fees: its times are a lower bound of a cloud store's request count × latency, never an estimate of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.fs as pafs

from govreports.load.lake import Lake
from govreports.load.warehouse import build
from tests.loadhelp import bundle
from tests.test_lake_s3 import BUCKET, client, moto_s3, storage_options

YEARS = range(2019, 2025)
_REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.1" (\d+)')


def _bundles(first: int, count: int) -> list:
    """Reports first … first+count-1: report i is agency i // 6's report of year 2019 + i % 6."""
    out = []
    for i in range(first, first + count):
        agency, year = i // 6, YEARS[i % 6]
        out.append(bundle(f"b{agency:06d}", f"{agency}号区民政局", year, "2019" if year <= 2020 else "2021",
                          100 + i % 997, i % 89, region=f"浙江省/{agency % 11}市/{agency % 97}区",
                          requests_new=3 + i % 7))
    return out


def _timed(f: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


class Requests:
    """The requests a moto server logged since the last `take`, by method (LIST: a GET of the bucket)."""

    def __init__(self, log: Path | None) -> None:
        self.log, self.seen = log, 0

    def take(self) -> dict[str, int] | None:
        if self.log is None:
            return None
        time.sleep(0.2)  # the server writes its log line after the response
        lines = self.log.read_text(errors="replace").splitlines()
        new, self.seen = lines[self.seen:], len(lines)
        counts: Counter[str] = Counter()
        for line in new:
            if m := _REQUEST.search(line):
                method, path = m.group(1), m.group(2)
                counts["LIST" if method == "GET" and path.startswith(f"/{BUCKET}?") else method] += 1
        return {**dict(sorted(counts.items())), "total": sum(counts.values())}


def lake_run(store: str, root: str, options: dict[str, str] | None, n: int, commits: int, work: Path,
             log: Path | None) -> dict:
    lake = Lake(root, options)
    per = n // commits
    requests = Requests(log)
    loads = []
    for c in range(commits):
        bundles = _bundles(c * per, per)
        loads.append(_timed(lambda b=bundles: lake.write(b))[1])
    requests.take()
    out: dict = {"store": store, "reports": per * commits, "commits": commits, "reports_per_commit": per,
                 "load_s_median": statistics.median(loads), "load_s_p90": sorted(loads)[int(0.9 * len(loads))],
                 "load_s_first": loads[0], "load_s_last": loads[-1], "load_s_total": sum(loads)}
    return {**out, **_measure(lake, requests, work / f"{store}.duckdb", _bundles(per * commits, per))}


def copied_lake_run(store: str, root: str, options: dict[str, str] | None, per: int, work: Path,
                    log: Path | None) -> dict:
    """The measurements of lake_run on a lake already there (copied from a reparse's), then one commit of `per`
    reports of new agencies."""
    lake = Lake(root, options)
    requests = Requests(log)
    requests.take()
    more = _bundles(10**8, per)  # agencies no reparse corpus has
    return {"store": store, "reports_per_commit": per, **_measure(lake, requests, work / f"{store}.duckdb", more)}


def _measure(lake: Lake, requests: Requests, db: Path, more: list) -> dict:
    """On a loaded lake: a LIST, a snapshot, a full build into `db`, one more commit of `more` and the
    incremental build, each timed, with the requests each made (on S3)."""
    out: dict = {}
    out["objects"], out["list_s"] = _timed(lake.file_count)
    out["list_requests"] = requests.take()
    _, out["snapshot_s"] = _timed(lake.snapshot)
    out["snapshot_requests"] = requests.take()
    _, out["build_full_s"] = _timed(lambda: build(lake, db))
    out["build_full_requests"] = requests.take()
    out["db_mb"] = round(db.stat().st_size / 2**20, 1)
    _, out["load_one_more_s"] = _timed(lambda: lake.write(more))
    out["load_one_more_requests"] = requests.take()
    _, out["build_incremental_s"] = _timed(lambda: build(lake, db))
    out["build_incremental_requests"] = requests.take()
    out["objects_after"] = lake.file_count()
    return out


def _upload(src: Path, endpoint: str, prefix: str) -> float:
    fs = pafs.S3FileSystem(**_pyarrow_s3(endpoint))
    _, took = _timed(lambda: pafs.copy_files(str(src), f"{BUCKET}/{prefix}", source_filesystem=pafs.LocalFileSystem(),
                                             destination_filesystem=fs, use_threads=True))
    return took


def _old_keys(n: int) -> list[str]:
    """The layout before issue 17: per report, a part.parquet per dataset and its checksum."""
    return [f"{dataset}/year={YEARS[i % 6]}/agency_id=b{i // 6:06d}/{name}"
            for i in range(n) for dataset in ("facts", "checks", "reports")
            for name in ("part.parquet", "_checksums/part.parquet.sha256")]


def old_layout_s3(endpoint: str, n: int) -> dict:
    s3 = client(endpoint)
    prefix = f"old-{n}"
    keys = _old_keys(n)
    with ThreadPoolExecutor(max_workers=8) as pool:
        _, put_s = _timed(lambda: list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{k}",
                                                                             Body=b"x" * 64), keys)))
    fs = pafs.S3FileSystem(**_pyarrow_s3(endpoint))
    selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True)
    count, list_s = _timed(lambda: sum(1 for i in fs.get_file_info(selector) if i.type == pafs.FileType.File))
    return {"store": "s3", "reports": n, "objects": count, "put_s": put_s, "list_s": list_s,
            "list_pages": -(-count // 1000)}


def old_layout_local(work: Path, n: int) -> dict:
    base = work / f"old-{n}"
    keys = _old_keys(n)

    def write() -> None:
        for k in keys:
            path = base / k
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 64)

    _, put_s = _timed(write)
    os.sync()
    selector = pafs.FileSelector(str(base), recursive=True)
    count, list_s = _timed(lambda: sum(1 for i in pafs.LocalFileSystem().get_file_info(selector)
                                       if i.type == pafs.FileType.File))
    shutil.rmtree(base)
    return {"store": "local", "reports": n, "objects": count, "put_s": put_s, "list_s": list_s}


def _pyarrow_s3(endpoint: str) -> dict:
    return {"access_key": "test", "secret_key": "test", "region": "us-east-1",
            "endpoint_override": endpoint.split("://", 1)[1], "scheme": "http"}


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, dict):
            return str(v.get("total"))
        return str(v)

    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(cell(r.get(c, "")) for c in columns) for r in rows]
    return "\n".join(f"| {line} |" for line in lines)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.lake_s3", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=1000, help="reports loaded (default 1000)")
    ap.add_argument("--commits", type=int, default=100, help="commits they are loaded in (default 100)")
    ap.add_argument("--old-layout", default="1000", help="report counts for the old layout's LIST, comma-separated")
    ap.add_argument("--skip-lake", action="store_true", help="only the old layout's objects")
    ap.add_argument("--from-lake", type=Path, help="a lake a reparse built, measured on disk and on moto")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lake-s3-", dir=os.environ.get("TMPDIR", "/tmp")))
    log = work / "moto.log"
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg_start": os.getloadavg(),
                     "cpus": os.cpu_count(), "lake": [], "old_layout": []}
    try:
        with moto_s3(log) as endpoint:
            if args.from_lake:
                local = work / "lake"
                shutil.copytree(args.from_lake, local)
                results["upload_s"] = _upload(local, endpoint, "lake")
                results["lake"].append(copied_lake_run("local", str(local), None, args.commits, work, None))
                print(_table(results["lake"], ["store", "objects", "build_full_s"]), flush=True)
                results["lake"].append(copied_lake_run("s3", f"s3://{BUCKET}/lake", storage_options(endpoint),
                                                       args.commits, work, log))
            elif not args.skip_lake:
                results["lake"].append(lake_run("local", str(work / "lake"), None, args.reports, args.commits,
                                                work, None))
                print(_table(results["lake"], ["store", "reports", "load_s_median"]), flush=True)
                results["lake"].append(lake_run("s3", f"s3://{BUCKET}/lake", storage_options(endpoint),
                                                args.reports, args.commits, work, log))
            for n in (int(x) for x in args.old_layout.split(",") if x):
                results["old_layout"].append(old_layout_local(work, n))
                results["old_layout"].append(old_layout_s3(endpoint, n))
                print(_table(results["old_layout"][-2:], ["store", "reports", "objects", "list_s"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    print(_table(results["lake"], ["store", "reports", "commits", "reports_per_commit", "load_s_median",
                                   "load_s_p90", "load_s_last", "db_mb",
                                   "objects", "list_s", "snapshot_s", "build_full_s", "load_one_more_s",
                                   "load_one_more_requests", "build_incremental_s", "build_incremental_requests"]))
    print(_table(results["old_layout"], ["store", "reports", "objects", "put_s", "list_s", "list_pages"]))
    print(f"load average: {results['loadavg_start']} at start, {results['loadavg_end']} at end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

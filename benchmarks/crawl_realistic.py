"""Crawl under realistic latency: the nightly flow against a site that answers slowly, over many hosts.

    .venv/bin/python -m benchmarks.crawl_realistic [--agencies 120] [--hosts 12] [--layout grouped]

Generates a synthetic site (benchmarks/scale.py's corpus: one report a year 2019-2024 per agency, pages
of 30-100 KB) and serves it on loopback from this process, one threading HTTP server per address
127.0.0.2, 127.0.0.3, ...; the registry gives each agency one of them, so the fetcher's per-host
politeness applies per host. Every response waits a latency drawn between 50 and 300 ms (seeded per
host, path and repeat) in its own thread; files carry ETag and Last-Modified and conditional requests
get 304, as agency web servers do.

Then `govreports run nightly` runs as a subprocess (the real CLI, `--delay 0.5` by default) four times
on one fresh warehouse: with one unreachable agency (Prefect's start-up and teardown; run twice, the
first to create the fresh Prefect home's database), the first nightly, and the nothing-changed nightly.
Per nightly:

- wall: process start to exit; start-up: process start to the first request reaching the server;
- the politeness floor: per host, with at most 2 requests in flight and `delay` seconds between request
  starts, its n requests cannot end before (n - 1) x delay + the last one's latency; the floor is the
  largest over hosts. Compared with the run after start-up (first request to exit);
- hosts at work: the sum of the hosts' spans (first request to last response) over the crawl's span,
  i.e. how many hosts were being crawled at once, on average;
- client CPU per request: user + system CPU of the run's process tree (getrusage(RUSAGE_CHILDREN))
  over the requests the server saw, with and without the empty run's CPU.

`--layout grouped` (the default) puts a host's agencies next to each other in the registry, as a
registry sorted by region does (a county portal serving its departments); `interleaved` deals agencies
to hosts in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
SCRATCH = Path("/tmp/govreports-crawlbench")
CONCURRENCY = 2  # the fetcher's requests in flight per host (extract.fetch.Fetcher's per_host_concurrency)


@dataclass(frozen=True, slots=True)
class Served:
    """One request as the server saw it (time.monotonic() seconds)."""

    host: str
    path: str
    status: int
    start: float  # the request read
    latency: float  # the delay drawn before answering
    end: float  # the response written


class SlowSite(ThreadingHTTPServer):
    """A static site on one address whose every answer waits a seeded random latency; requests are
    recorded in `log`, shared by the servers of one site."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path, latency: tuple[float, float], seed: int,
                 log: list[Served], lock: threading.Lock) -> None:
        super().__init__(address, partial(SlowHandler, directory=str(root)))
        self.latency, self.seed, self.log, self.lock = latency, seed, log, lock
        self.repeats: Counter[str] = Counter()

    def draw(self, path: str) -> float:
        """The latency of this path's next request: the same in every benchmark run with the same seed."""
        with self.lock:
            self.repeats[path] += 1
            n = self.repeats[path]
        return random.Random(f"{self.seed}:{self.server_address[0]}:{path}:{n}").uniform(*self.latency)


class SlowHandler(SimpleHTTPRequestHandler):
    """Static files after a latency, kept-alive, with ETag (mtime and size, as nginx makes it) and
    Last-Modified; If-None-Match and If-Modified-Since are answered with 304. HTML has no charset."""

    server: SlowSite
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, ".html": "text/html",
                                                ".txt": "text/plain", ".pdf": "application/pdf"}
    _etag: str | None = None
    _status: int = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def list_directory(self, path: str) -> None:
        self.send_error(404, "File not found")

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def end_headers(self) -> None:
        if self._etag and self._status in (200, 304):
            self.send_header("ETag", self._etag)
        super().end_headers()

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        try:
            st = os.stat(path)
        except OSError:
            st = None
        self._etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"' if st else None
        tags = [t.strip() for t in self.headers.get("If-None-Match", "").split(",") if t.strip()]
        if self._etag and (self._etag in tags or "*" in tags):
            self.send_response(304)
            self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
            self.end_headers()
            return None
        return super().send_head()  # If-Modified-Since is honoured there when no If-None-Match came

    def do_GET(self) -> None:
        start = time.monotonic()
        latency = self.server.draw(self.path)
        time.sleep(latency)
        self._status = 0
        try:
            super().do_GET()
        finally:
            served = Served(self.server.server_address[0], self.path, self._status, start, latency, time.monotonic())
            with self.server.lock:
                self.server.log.append(served)


def serve(root: Path, hosts: int, latency: tuple[float, float], seed: int) -> tuple[list[SlowSite], list[Served]]:
    """One server per address 127.0.0.2 … 127.0.0.(hosts + 1), each in a daemon thread."""
    log: list[Served] = []
    lock = threading.Lock()
    servers = []
    for i in range(hosts):
        server = SlowSite((f"127.0.0.{i + 2}", 0), root, latency, seed, log, lock)
        threading.Thread(target=server.serve_forever, daemon=True, name=f"site-{i + 2}").start()
        servers.append(server)
    return servers, log


# -- the site ---------------------------------------------------------------------------------------------------


def build(root: Path, n_agencies: int, servers: Sequence[SlowSite], layout: str) -> dict:
    """The site's files under root/site and root/sources.csv, each agency on one of the servers."""
    from benchmarks.scale import CHUNK_AGENCIES, chunk_site
    from benchmarks.sites import build_site, write_registry

    agencies, reports = [], []
    for c in range(-(-n_agencies // CHUNK_AGENCIES)):
        a, r = chunk_site(c, n_agencies)
        agencies += a
        reports += r
    manifest = build_site(root / "site", agencies, reports)
    bases = [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers]

    def host_of(i: int) -> int:
        return i * len(bases) // len(agencies) if layout == "grouped" else i % len(bases)

    base_urls = {a.agency_id: bases[host_of(i)] for i, a in enumerate(agencies)}
    write_registry(root / "sources.csv", agencies, base_urls=base_urls)
    # One agency where nothing listens (port 9): the flow starts, its fetch fails at once, the process ends.
    write_registry(root / "unreachable.csv", agencies[:1], base_urls={agencies[0].agency_id: "http://127.0.0.1:9"})
    sizes = [m["bytes"] for m in manifest["reports"]]
    return {"agencies": len(agencies), "reports": len(reports), "hosts": len(bases), "layout": layout,
            "mb": round(sum(sizes) / 2**20, 1), "agencies_per_host": dict(Counter(base_urls.values()))}


# -- one run ----------------------------------------------------------------------------------------------------


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_cli(args: Sequence[str], env: dict[str, str]) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run `govreports ARGS`; returns its start and end (time.monotonic()), its tree's CPU and the result."""
    exe = Path(sys.executable).with_name("govreports")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from govreports.flows.cli import main; main()"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, cwd=REPO)
    end = time.monotonic()
    return start, end, _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(before), done


def measure(served: Sequence[Served], start: float, end: float, cpu: float, delay: float) -> dict:
    """The numbers of one nightly from the requests the server saw during it."""
    if not served:
        raise SystemExit("the run made no request: see its output above")
    by_host: dict[str, list[Served]] = defaultdict(list)
    for s in served:
        by_host[s.host].append(s)
    hosts = {}
    for host, reqs in sorted(by_host.items(), key=lambda kv: tuple(int(p) for p in kv[0].split("."))):
        reqs.sort(key=lambda s: s.start)
        events = sorted([(s.start, 1) for s in reqs] + [(s.end, -1) for s in reqs])
        in_flight = peak = 0
        for _, step in events:
            in_flight += step
            peak = max(peak, in_flight)
        gaps = [b.start - a.start for a, b in pairwise(reqs)]
        first, last = reqs[0].start, max(s.end for s in reqs)
        hosts[host] = {"requests": len(reqs), "floor_s": round((len(reqs) - 1) * delay + reqs[-1].latency, 3),
                       "first_s": round(first - start, 3), "last_s": round(last - start, 3),
                       "span_s": round(last - first, 3), "peak_in_flight": peak,
                       "min_gap_s": round(min(gaps), 3) if gaps else None}
    floor = max(h["floor_s"] for h in hosts.values())
    first = min(s.start for s in served)
    last = max(s.end for s in served)
    wall, startup = end - start, first - start
    crawl = last - first
    return {
        "requests": len(served),
        "status": {str(k): n for k, n in sorted(Counter(int(s.status) for s in served).items())},
        "wall_s": round(wall, 2), "startup_s": round(startup, 2), "crawl_s": round(crawl, 2),
        "after_crawl_s": round(end - last, 2), "floor_s": round(floor, 2),
        "run_over_floor": round((wall - startup) / floor, 3), "wall_over_floor": round(wall / floor, 3),
        "crawl_over_floor": round(crawl / floor, 3),
        "hosts_at_work": round(sum(h["span_s"] for h in hosts.values()) / crawl, 2) if crawl > 0 else None,
        "cpu_s": round(cpu, 2), "cpu_ms_per_request": round(1000 * cpu / len(served), 2), "hosts": hosts,
    }


def _summary_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.strip()][:12]


# -- the benchmark ----------------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict:
    root = args.scratch
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    servers, log = serve(root / "site", args.hosts, (args.min_latency, args.max_latency), args.seed)
    try:
        t0 = time.perf_counter()
        site = build(root, args.agencies, servers, args.layout)
        print(f"site: {site['agencies']} agencies, {site['reports']} reports ({site['mb']} MB) on {site['hosts']} "
              f"hosts ({args.layout}), built in {time.perf_counter() - t0:.1f} s; latency "
              f"{1000 * args.min_latency:.0f}-{1000 * args.max_latency:.0f} ms; delay {args.delay} s", flush=True)
        env = dict(os.environ, PREFECT_HOME=str(root / "prefect-home"), PYTHONUNBUFFERED="1")
        common = ["--warehouse", str(root / "wh"), "run", "nightly", "--allow-loopback", "--delay", str(args.delay),
                  "--quiet"]
        # One unreachable agency: the flow starts, fails its fetch stage, and the process ends (exit 1). Twice:
        # the first creates the fresh Prefect home's database, which a user's Prefect home already has.
        for _ in range(2):
            start, end, cpu, done = run_cli([*common, "--sources", str(root / "unreachable.csv")], env)
            if "every agency failed to fetch" not in done.stdout + done.stderr:
                raise SystemExit(f"the empty run did not end as expected:\n{done.stdout}\n{done.stderr}")
        empty = {"wall_s": round(end - start, 2), "cpu_s": round(cpu, 2), "requests": len(log)}
        print(f"empty run (one unreachable agency; Prefect start-up and teardown): {empty['wall_s']} s, "
              f"CPU {empty['cpu_s']} s", flush=True)
        runs = []
        for label in ("first", "nothing changed"):
            mark = len(log)
            start, end, cpu, done = run_cli([*common, "--sources", str(root / "sources.csv")], env)
            (root / f"nightly-{len(runs) + 1}.log").write_text(done.stdout + done.stderr)  # kept with --keep
            if done.returncode != 0:
                raise SystemExit(f"the {label} nightly failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            run = {"run": label, **measure(log[mark:], start, end, cpu, args.delay)}
            run["cpu_ms_per_request_net"] = round(1000 * (cpu - empty["cpu_s"]) / run["requests"], 2)
            run["summary"] = _summary_lines(done.stdout)
            runs.append(run)
            print(f"{label}: {run['wall_s']} s, {run['requests']} requests {run['status']}; "
                  f"{run['summary'][0] if run['summary'] else ''}", flush=True)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    result = {"benchmark": "crawl_realistic", "site": site, "delay_s": args.delay,
              "latency_ms": [1000 * args.min_latency, 1000 * args.max_latency], "seed": args.seed,
              "empty_run": empty, "runs": runs}
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def report(r: dict, per_host: bool) -> None:
    site = r["site"]
    print(f"\ncrawl under realistic latency: {site['agencies']} agencies, {site['reports']} reports, "
          f"{site['hosts']} hosts ({site['layout']}), latency {r['latency_ms'][0]:.0f}-{r['latency_ms'][1]:.0f} ms, "
          f"delay {r['delay_s']} s, {CONCURRENCY} requests in flight per host")
    print(f"Prefect start-up and teardown (one unreachable agency): {r['empty_run']['wall_s']} s, "
          f"CPU {r['empty_run']['cpu_s']} s")
    cols = [("run", "run", "{}"), ("requests", "requests", "{}"), ("wall s", "wall_s", "{:.1f}"),
            ("start-up s", "startup_s", "{:.1f}"), ("crawl s", "crawl_s", "{:.1f}"),
            ("after crawl s", "after_crawl_s", "{:.1f}"), ("floor s", "floor_s", "{:.1f}"),
            ("(wall-start-up)/floor", "run_over_floor", "{:.2f}"), ("hosts at work", "hosts_at_work", "{:.1f}"),
            ("CPU ms/req", "cpu_ms_per_request", "{:.2f}"), ("net of empty", "cpu_ms_per_request_net", "{:.2f}")]
    print("  ".join(f"{h:>{max(len(h), 8)}}" for h, _, _ in cols))
    for run in r["runs"]:
        print("  ".join(f"{f.format(run[k]):>{max(len(h), 8)}}" for h, k, f in cols))
    for run in r["runs"]:
        print(f"  {run['run']}: status {run['status']}; wall / floor {run['wall_over_floor']}, "
              f"crawl / floor {run['crawl_over_floor']}")
        if per_host:
            print(f"    {'host':<12} {'requests':>8} {'first s':>8} {'last s':>8} {'span s':>8} {'floor s':>8} "
                  f"{'peak in flight':>14} {'min gap s':>9}")
            for host, h in run["hosts"].items():
                print(f"    {host:<12} {h['requests']:>8} {h['first_s']:>8.1f} {h['last_s']:>8.1f} {h['span_s']:>8.1f} "
                      f"{h['floor_s']:>8.1f} {h['peak_in_flight']:>14} {h['min_gap_s']:>9}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks.crawl_realistic", description=__doc__.split("\n\n")[0])
    ap.add_argument("--agencies", type=int, default=120, help="agencies, one report a year 2019-2024 (default 120)")
    ap.add_argument("--hosts", type=int, default=12, help="hosts 127.0.0.2 … (default 12)")
    ap.add_argument("--layout", choices=("grouped", "interleaved"), default="grouped",
                    help="a host's agencies next to each other in the registry, or dealt in turn (default grouped)")
    ap.add_argument("--delay", type=float, default=0.5, help="the nightly's --delay (default 0.5, its default)")
    ap.add_argument("--min-latency", type=float, default=0.05, help="seconds (default 0.05)")
    ap.add_argument("--max-latency", type=float, default=0.3, help="seconds (default 0.3)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--per-host", action="store_true", help="print every host's requests, span and floor")
    ap.add_argument("--scratch", type=Path, default=SCRATCH, help=f"scratch directory, emptied (default {SCRATCH})")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    args = ap.parse_args(argv)
    if not 1 <= args.hosts <= 250:
        ap.error("--hosts must be between 1 and 250 (addresses 127.0.0.2 …)")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result = bench(args)
    report(result, args.per_host)
    result |= {"date": started, "command": "python -m benchmarks.crawl_realistic " + " ".join(argv),
               "cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

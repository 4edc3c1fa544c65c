"""The reparse flow on a Dask LocalCluster of 1, 2, 4 … worker processes (issue 17, "Beyond one machine").

    .venv/bin/python -m benchmarks.dask_workers --reports 2000 --workers 1 2 4 --json /tmp/dask-2k.json

Builds (or with --reuse, takes) the raw zone and fetch log that `benchmarks/scale.py reparse` builds, under
<scratch>/reparse-N, so that `python -m benchmarks.scale corpus --reports N --keep` (when scale.py has it) and
this command share one corpus. Then for each worker count, in a child process of its own: starts a
`distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True)` on 127.0.0.1, runs the reparse
flow with `DaskTaskRunner(address=cluster.scheduler_address)` from an empty lake and database, and records

- wall time and reports/s of the flow (the cluster's start is timed apart, not counted);
- the parse stage: from the flow's side (its _ParseStage handing out batches and waiting for them), and on the
  cluster, the span from the first parse-and-load task's start to the last one's end (the scheduler's task
  stream);
- how the work divided: per worker, the tasks the task stream saw, and from counters a worker plugin keeps
  in each worker process (it wraps flows.steps' parse_pages, load and parse_and_load there): batches, pages,
  reports parsed, agencies, seconds parsing and writing;
- each worker's peak RSS (ru_maxrss, read in the worker), the Prefect servers or other processes a worker
  started, and Dask's warnings (large graphs, memory pressure);
- that the database holds every generated value (scale.verify).

Progress lines go to stdout every --progress seconds, so that a long unattended run shows where it is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import scale

STEP_NAMES = ("parse_and_load", "parse_pages", "load")


# -- in each Dask worker process -------------------------------------------------------------------------------


def _install_counters(dask_worker: Any) -> None:
    """Wrap flows.steps' batch functions in this worker process so that each call is counted. The Prefect task
    calls `steps.parse_and_load`, which calls `parse_pages` and `load`, all looked up on the module at call
    time, so wrapping the module's attributes sees every call."""
    from govreports.flows import steps

    if getattr(dask_worker, "govreports_counts", None) is not None:
        return
    counts: dict[str, Any] = {"batches": 0, "pages": 0, "parsed": 0, "agencies": set(), "busy_s": Counter(),
                              "first": None, "last": None}
    dask_worker.govreports_counts = counts
    lock = threading.Lock()

    def wrap(name: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = time.time()
                with lock:
                    counts["busy_s"][name] += t1 - t0
                    if name == "parse_and_load":
                        refs = args[2] if len(args) > 2 else kwargs["refs"]
                        counts["batches"] += 1
                        counts["pages"] += len(refs)
                        counts["agencies"].update(r.agency_id for r in refs)
                        counts["first"] = t0 if counts["first"] is None else min(counts["first"], t0)
                        counts["last"] = t1 if counts["last"] is None else max(counts["last"], t1)
                    elif name == "load":  # load(lake_root, bundles): the reports this batch parsed
                        counts["parsed"] += len(args[1] if len(args) > 1 else kwargs["bundles"])
        wrapped.__wrapped__ = fn
        return wrapped

    for name in STEP_NAMES:
        setattr(steps, name, wrap(name, getattr(steps, name)))


def _worker_report(dask_worker: Any) -> dict:
    """What this worker process did, its peak RSS, and the processes it started (an own Prefect server?)."""
    import psutil

    counts = getattr(dask_worker, "govreports_counts", None) or {}
    me = psutil.Process()
    kids = []
    for child in me.children(recursive=True):
        try:
            kids.append({"pid": child.pid, "cmd": " ".join(child.cmdline())[:200],
                         "rss_mb": round(child.memory_info().rss / 2**20, 1)})
        except psutil.Error:
            pass
    try:
        from prefect.settings import get_current_settings

        api_url = get_current_settings().api.url
    except Exception as exc:  # only informative
        api_url = f"unknown: {exc}"
    return {"pid": os.getpid(), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_now_mb": round(me.memory_info().rss / 2**20, 1),
            "peak_children_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "memory_limit_mb": round((dask_worker.memory_manager.memory_limit or 0) / 2**20),
            "batches": counts.get("batches", 0), "pages": counts.get("pages", 0),
            "reports_parsed": counts.get("parsed", 0), "agencies": len(counts.get("agencies", ())),
            "busy_s": {k: round(v, 2) for k, v in counts.get("busy_s", {}).items()},
            "first_batch_start": counts.get("first"), "last_batch_end": counts.get("last"),
            "children": kids, "prefect_api_url_setting": api_url,
            "cpu_s": round(sum(me.cpu_times()[:2]), 1)}


# -- the measured child process --------------------------------------------------------------------------------


class _DaskWarnings(logging.Handler):
    """Dask's warnings in this process (the scheduler and the client run here): large graphs, unresponsive
    event loops, workers paused or restarted for memory."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages[f"{record.name}: {record.getMessage()[:160]}"] += 1


def _task_prefix(key: Any) -> str:
    """A task stream key's name without the run ids Prefect appends (parse-and-load-<uuid> …)."""
    key = key[0] if isinstance(key, tuple) else key
    text = str(key)
    parts = text.split("-")
    while parts and ((len(parts[-1]) >= 8 and all(c in "0123456789abcdef" for c in parts[-1])) or parts[-1].isdigit()):
        parts.pop()
    return "-".join(parts) or text


def _stream_summary(stream: list[dict], t0: float) -> dict:
    """Per worker and task name: tasks, compute seconds, transfer/deserialize seconds; the parse stage's span."""
    per_worker: dict[str, dict] = defaultdict(lambda: {"tasks": Counter(), "compute_s": 0.0, "other_s": 0.0})
    starts, stops = [], []
    for t in stream:
        w = per_worker[t.get("worker", "?")]
        name = _task_prefix(t.get("key"))
        w["tasks"][name] += 1
        for ss in t.get("startstops", ()):
            dur = ss["stop"] - ss["start"]
            if ss["action"] == "compute":
                w["compute_s"] += dur
                if "parse" in name:
                    starts.append(ss["start"])
                    stops.append(ss["stop"])
            else:
                w["other_s"] += dur
    out = {w: {"tasks": dict(v["tasks"]), "compute_s": round(v["compute_s"], 2),
               "transfer_etc_s": round(v["other_s"], 3)} for w, v in sorted(per_worker.items())}
    span = {"first_start_s": round(min(starts) - t0, 2), "last_stop_s": round(max(stops) - t0, 2),
            "span_s": round(max(stops) - min(starts), 2)} if starts else {}
    return {"per_worker": out, "parse_tasks_span": span, "tasks": len(stream)}


@contextlib.contextmanager
def _api_for_workers(mode: str) -> Iterator[None]:
    """"workers": as the flows run today: on the ephemeral API the flow's settings carry no API URL, so each
    Dask worker process starts a Prefect server of its own (on the same PREFECT_HOME database) for its task
    runs. "flow": the flow's own ephemeral server's URL set as PREFECT_API_URL around the run, which
    prefect-dask hands to the workers with the rest of the settings context (what the process pool path of
    flows/pipeline.py does for its processes)."""
    if mode == "workers":
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: SubprocessASGIServer().api_url}):
        yield


def child_run(spec: dict) -> dict:
    """One worker count: a LocalCluster, the reparse flow on it, what each worker did."""
    clock = scale.StageClock()
    clock.install()  # the flow's side: the parse stage's add/_collect (reading the fetch log in add), refresh
    rss = scale.RssSampler()  # this process (flow, Prefect client, Dask scheduler) and every descendant
    warnings = _DaskWarnings()
    for name in ("distributed", "dask"):
        logging.getLogger(name).addHandler(warnings)
    startup = scale._warm_prefect()
    from distributed import Client, LocalCluster, get_task_stream
    from prefect_dask import DaskTaskRunner

    from govreports.flows.pipeline import MAX_BATCH, reparse
    from govreports.flows.prefect_env import local_runs

    w, n = spec["workers"], spec["reports"]
    out: dict[str, Any] = {"workers": w, "prefect_api": spec["prefect_api"], "prefect_startup_s": round(startup, 2)}
    t_c = time.perf_counter()
    with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(_install_counters)
        out["cluster_start_s"] = round(time.perf_counter() - t_c, 2)
        out["scheduler_address"] = cluster.scheduler_address
        flow = reparse.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        done = threading.Event()

        def progress() -> None:
            batches = -(-n // MAX_BATCH)  # a reparse's batches: about MAX_BATCH pages of whole agencies each
            while not done.wait(spec["progress"]):
                collected = len(clock.spans.get("_collect", ()))
                print(f"  [{w} worker{'s' * (w > 1)}] {time.perf_counter() - t0:7.0f} s: {collected}/~{batches} "
                      f"batches back; refresh {'running or done' if 'refresh' in clock.spans else 'not yet'}",
                      flush=True)

        t0 = time.perf_counter()
        wall_t0 = time.time()
        ticker = threading.Thread(target=progress, daemon=True)
        ticker.start()
        try:
            with get_task_stream(client) as ts, local_runs(), _api_for_workers(spec["prefect_api"]):
                summary = flow(warehouse=spec["warehouse"], sources_file=spec["sources"], site=spec["site"])
        finally:
            done.set()
        wall = time.perf_counter() - t0
        workers = client.run(_worker_report)
        stream = ts.data
    out |= clock.report(wall, n)
    parse_side = [s for name in scale.FLOW_STAGES for s in clock.spans.get(name, ())]
    out["parse_stage_flow_side_s"] = round(scale.StageClock._union(parse_side), 2)
    if parse_side:  # from handing out the first batch to the last batch's counts
        out["parse_stage_elapsed_s"] = round(max(b for _, b in parse_side) - min(a for a, _ in parse_side), 2)
    out["task_stream"] = _stream_summary(stream, wall_t0)
    out["worker_processes"] = {addr: r for addr, r in sorted(workers.items())}
    out["summary"] = {k: v for k, v in summary.items() if k not in ("failures", "by_agency")}
    out["failures"] = summary["failures"][:10]
    out["dask_warnings"] = dict(warnings.messages.most_common(20))
    out |= rss.stop()
    out.pop("rss_timeline_mb", None)
    return out


# -- the command -----------------------------------------------------------------------------------------------


def empty_warehouse(wh: Path) -> None:
    """Only the raw zone and the fetch log stay: no lake (of any layout), no database, no lock or marker."""
    for p in wh.iterdir():
        if p.name in ("raw", "fetch_log"):
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def corpus_for(args: argparse.Namespace) -> tuple[Path, dict]:
    root = args.scratch / f"reparse-{args.reports}"
    if args.reuse and (root / "corpus.json").exists() and (root / "wh" / "raw").is_dir():
        corpus = json.loads((root / "corpus.json").read_text())
        print(f"reusing the raw zone in {root}: {corpus['reports']} reports, {corpus.get('sizes')}", flush=True)
        return root, corpus
    scale._fresh(root)
    extra = {"padded": False} if args.unpadded else {}
    try:
        corpus = scale.build_reparse_corpus(root, args.reports, args.jobs, **extra)
    except TypeError:  # a scale.py without padded=: every page padded
        if args.unpadded:
            raise SystemExit("this scale.py cannot build unpadded pages") from None
        corpus = scale.build_reparse_corpus(root, args.reports, args.jobs)
    (root / "corpus.json").write_text(json.dumps(corpus))
    return root, corpus


def _lake_files(lake: Path) -> int:
    return sum(1 for _ in lake.rglob("*.parquet")) if lake.is_dir() else 0


def print_table(result: dict) -> None:
    runs = result["runs"]
    print(f"\nreparse on a Dask LocalCluster, {result['reports']} reports ({result['corpus'].get('agencies')} "
          f"agencies), threads_per_worker=1, processes=True, Prefect API: {result['prefect_api']}")
    print(f"{'workers':>7} {'wall s':>8} {'rep/s':>7} {'parse stage s':>14} {'tasks span s':>13} {'refresh s':>10} "
          f"{'cluster start s':>15} {'tree PSS MB':>11} {'check':>6}")
    for r in runs:
        refresh = r["stages"].get("refresh", {}).get("wall_s", 0.0)
        span = r["task_stream"]["parse_tasks_span"].get("span_s", 0)
        print(f"{r['workers']:>7} {r['wall_s']:>8.1f} {r['reports_per_s']:>7.1f} "
              f"{r.get('parse_stage_elapsed_s', 0):>14.1f} {span:>13.1f} "
              f"{refresh:>10.1f} {r['cluster_start_s']:>15.1f} {r['peak_total_pss_mb']:>11.0f} {r['check']['ok']!s:>6}")
    print("\nper worker: batches, pages, reports, agencies, parse s, write s, peak RSS MB, tasks (task stream)")
    for r in runs:
        stream = r["task_stream"]["per_worker"]
        for addr, wk in r["worker_processes"].items():
            tasks = stream.get(addr, {}).get("tasks", {})
            print(f"  {r['workers']} workers  {addr:<24} {wk['batches']:>5} {wk['pages']:>7} {wk['reports_parsed']:>7} "
                  f"{wk['agencies']:>6} {wk['busy_s'].get('parse_pages', 0):>8.1f} {wk['busy_s'].get('load', 0):>7.1f} "
                  f"{wk['peak_rss_mb']:>8.0f}  {tasks}")
            if wk["children"]:
                print(f"      processes it started: {[c['cmd'][:90] for c in wk['children']]}")
        if r["dask_warnings"]:
            print(f"  {r['workers']} workers, Dask warnings: {r['dask_warnings']}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        spec_file, out_file = argv[2:4]  # after the kind, as scale.run_child passes it
        Path(out_file).write_text(json.dumps(child_run(json.loads(Path(spec_file).read_text())), default=str))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_workers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--scratch", type=Path, default=scale.SCRATCH, help=f"default {scale.SCRATCH}")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating the corpus")
    parser.add_argument("--reuse", action="store_true", help="reuse <scratch>/reparse-N's raw zone if there")
    parser.add_argument("--unpadded", action="store_true", help="small pages (a scale.py with `corpus --unpadded`)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus (for --reuse) and the last lake")
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--prefect-api", choices=("workers", "flow"), default="workers",
                        help="workers: each worker starts its own Prefect server (the flows as they are); "
                             "flow: the workers report to the flow's server")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    root, corpus = corpus_for(args)
    n = corpus["reports"]
    wh = root / "wh"
    result: dict[str, Any] = {"benchmark": "dask_workers", "reports": n, "corpus": corpus, "runs": [],
                              "prefect_api": args.prefect_api,
                              "date": started, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                              "command": "python -m benchmarks.dask_workers " + " ".join(argv)}
    for w in args.workers:
        empty_warehouse(wh)
        print(f"{time.strftime('%H:%M:%S')} {w} worker(s): reparse of {n} reports from an empty lake", flush=True)
        spec = {"workers": w, "reports": n, "warehouse": str(wh), "sources": str(root / "sources.csv"),
                "site": scale.SITE_PREFIX, "progress": args.progress, "prefect_api": args.prefect_api}
        run = scale.run_child(f"dask-{spec['workers']}", spec, root, module="benchmarks.dask_workers")
        run["loadavg_after"] = os.getloadavg()
        run["check"] = scale.verify(wh / "govreports.duckdb", str(root / "expected" / "*.parquet"), n)
        run["lake_parquet_files"] = _lake_files(wh / "parquet")
        result["runs"].append(run)
        print(f"{time.strftime('%H:%M:%S')} {w} worker(s): {run['wall_s']:.1f} s, {run['reports_per_s']} reports/s, "
              f"check ok: {run['check']['ok']}", flush=True)
        if args.json:  # after every worker count, so that a long run keeps what it measured
            args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    print_table(result)
    if args.json:
        print(f"wrote {args.json}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

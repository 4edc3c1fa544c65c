"""The `govreports` command. Subcommands import what they need when they run, so that `parse` and
`query` answer without starting Prefect (its local API takes seconds to start)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_FAILED_INPUT = 0, 2


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def cmd_parse(args: argparse.Namespace) -> int:
    from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, frame_from_rows
    from govreports.transform.report import ParseFailure, parse_report

    rows: list[tuple] = []
    failed = 0
    for path in args.paths:
        try:
            data = _read_input(path)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        try:
            report = parse_report(data, source=path, agency=args.agency, year=args.year)
        except ParseFailure as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if report.meta.truncated:
            print(f"{path}: truncated: {'; '.join(report.meta.problems)}", file=sys.stderr)
        rows.extend(report.check_rows if args.checks else report.fact_rows)
    out = frame_from_rows(rows, CHECK_COLUMNS if args.checks else FACT_COLUMNS)
    _print_frame(out, args.format, checks=args.checks)
    return EXIT_FAILED_INPUT if failed else EXIT_OK


def _print_frame(df, fmt: str, checks: bool) -> None:
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "jsonl":
        if len(df):
            df.to_json(sys.stdout, orient="records", lines=True, force_ascii=False)
            sys.stdout.write("\n")
    else:
        cols = (["report_id", "rule", "subject", "expected", "actual", "status"] if checks else
                ["agency", "year", "section", "metric", "row_label", "column_label", "value", "value_status", "raw"])
        view = df[cols].copy()
        if not checks:
            view["raw"] = view["raw"].str.replace(r"\s+", " ", regex=True).str.strip()
        sys.stdout.write(view.to_string(index=False, max_colwidth=36) + "\n")


def _stderr() -> Console:
    """Progress goes to standard error: standard output carries the results (tables, CSV, JSON)."""
    from rich.console import Console

    return Console(stderr=True)


class _FetchProgress:
    """A progress bar over agencies (done / total) with the pages seen so far, on standard error.
    On a terminal it redraws in place; elsewhere rich prints nothing until the end."""

    def __init__(self, total: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.pages = 0
        self.progress = Progress(TextColumn("[bold]fetch[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("agencies, {task.fields[pages]} pages  {task.description}"),
                                 TimeElapsedColumn(), disable=quiet, transient=False, console=_stderr())
        self.task = self.progress.add_task("", total=total, pages=0)

    def __enter__(self) -> _FetchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, agency_id: str, message: str) -> None:
        if message == "done":
            self.progress.advance(self.task)
        elif message.split(":", 1)[0] in ("new", "new_version", "unchanged", "failed"):
            self.pages += 1
        self.progress.update(self.task, pages=self.pages, description=f"{agency_id}: {message}"[:60])


def cmd_fetch(args: argparse.Namespace) -> int:
    from govreports.extract.fetch import Fetcher
    from govreports.extract.sources import SourcesError, load_sources, select
    from govreports.flows import steps
    from govreports.flows.config import DATA_DIR

    try:
        sources = select(load_sources(args.sources or DATA_DIR / "sources.csv", site=args.site),
                         agencies=args.agency, region=args.region)
    except SourcesError as exc:
        print(f"govreports fetch: {exc}", file=sys.stderr)
        return 1
    from govreports.flows.runlock import LockHeld, RunLock

    wh = _warehouse(args)
    try:
        with (RunLock(wh.lock_dir),
              Fetcher(allow_loopback=args.allow_loopback, delay=args.delay, timeout=args.timeout) as fetcher,
              _FetchProgress(len(sources), args.quiet) as progress):
            result = steps.fetch(sources, wh, fetcher, years=args.year, on_event=progress)
    except LockHeld as exc:
        print(f"govreports fetch: {exc}", file=sys.stderr)
        return 1
    print(f"{'agency':<24}{'discovered':>11}{'fetched':>9}{'changed':>9}{'unchanged':>10}{'failed':>8}"
          f"{'not readable':>14}")
    for s in result.agencies.values():
        print(f"{s.agency_id:<24}{s.discovered:>11}{s.fetched:>9}{s.new_versions:>9}{s.unchanged:>10}"
              f"{s.failed:>8}{s.not_readable:>14}")
        for error in s.errors:
            print(f"  ! {error}")
    print(f"{result.changed} changed; raw zone {wh.raw}; fetch log {wh.fetch_log}")
    return 1 if result.all_failed else EXIT_OK


def _flow_kwargs(args: argparse.Namespace) -> dict:
    return {"sources_file": str(args.sources) if args.sources else None, "warehouse": args.warehouse,
            "site": args.site, "agencies": args.agency or None, "region": args.region,
            "allow_loopback": args.allow_loopback, "delay": args.delay, "timeout": args.timeout}


class _RunProgress:
    """One progress bar per stage of a flow run (fetch: agencies; parse: pages; refresh), on standard
    error, fed by flows.progress. On a terminal it redraws in place; elsewhere rich prints the bars once,
    at the end."""

    LABELS: ClassVar[dict[str, str]] = {"fetch": "agencies", "parse": "pages", "refresh": "rebuild"}

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description:<8}[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), disable=quiet,
                                 transient=False, console=_stderr())
        self.tasks: dict[str, object] = {}

    def __enter__(self) -> _RunProgress:
        from govreports.flows import progress

        self.progress.__enter__()
        progress.listen(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from govreports.flows import progress

        progress.listen(None)
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total, unit=self.LABELS.get(stage, ""))
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _run_flow(name: str, kwargs: dict, task_runner: str = "thread", dask_address: str | None = None,
              quiet: bool = False) -> int:
    from govreports.flows import pipeline
    from govreports.flows.prefect_env import local_runs

    flow = {"nightly": pipeline.nightly, "backfill": pipeline.backfill, "reparse": pipeline.reparse}[name]
    if task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=dask_address) if dask_address else DaskTaskRunner()
        flow = flow.with_options(task_runner=runner)
    try:
        with _RunProgress(quiet), local_runs():
            summary = pipeline.RunSummary(**flow(**kwargs))
    except (pipeline.StageFailed, ValueError) as exc:
        print(f"govreports {name}: {exc}", file=sys.stderr)
        return 1
    print(summary.text())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    return _run_flow(args.flow, _flow_kwargs(args), args.task_runner, args.dask_address, args.quiet)


def cmd_backfill(args: argparse.Namespace) -> int:
    first, last = args.years
    return _run_flow("backfill", {**_flow_kwargs(args), "years": list(range(first, last + 1))},
                     args.task_runner, args.dask_address, args.quiet)


def cmd_reparse(args: argparse.Namespace) -> int:
    return _run_flow("reparse", {"warehouse": args.warehouse, "sources_file": args.sources, "site": args.site},
                     quiet=args.quiet)


def cmd_serve(args: argparse.Namespace) -> int:
    from govreports.flows import schedule

    return schedule.serve(cron=args.cron, timezone=args.timezone, port=args.port, flow_kwargs=_flow_kwargs(args))


def cmd_demo_site(args: argparse.Namespace) -> int:
    from govreports.flows import demo_site

    demo_site.main(args.port)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the bundled demo site on 127.0.0.1, run the nightly flow against it, print the comparison."""
    from govreports.flows import demo_site
    from govreports.flows.config import DATA_DIR

    # A fixed port: the registry's URLs (and so the fetch log's) stay the same from one run to the next,
    # which is what lets a second run find nothing changed.
    try:
        server, url = demo_site.serve(port=args.port)
    except OSError as exc:
        print(f"govreports demo: cannot serve the demo site on 127.0.0.1:{args.port}: {exc.strerror or exc} "
              "(choose another with --port)", file=sys.stderr)
        return 1
    try:
        print(f"demo site (sample data) at {url}", flush=True)
        kwargs = {"sources_file": str(DATA_DIR / "sample_site" / "sources.csv"), "warehouse": args.warehouse,
                  "site": url, "agencies": None, "region": None, "allow_loopback": True, "delay": 0.0,
                  "timeout": 10.0}
        rc = _run_flow("nightly", kwargs, quiet=args.quiet)
    finally:
        server.shutdown()
    if rc != EXIT_OK:
        return rc
    chart = Path(args.warehouse) / "licensing.png"
    print()
    ns = argparse.Namespace(warehouse=args.warehouse, db=args.db, measure="licensing", region="浙江省/宁波市",
                            years=None, top=None, chart=str(chart))
    return cmd_compare(ns)


def _years(text: str) -> tuple[int, int]:
    try:
        first, _, last = text.partition("-")
        span = (int(first), int(last or first))
    except ValueError:
        raise argparse.ArgumentTypeError(f"years must look like 2019-2024 or 2021, not {text!r}") from None
    if span[0] > span[1]:
        raise argparse.ArgumentTypeError(f"years {text!r}: the first is after the last")
    return span


def _warehouse(args: argparse.Namespace):
    from govreports.flows.config import Warehouse

    return Warehouse(args.warehouse, args.db)


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from govreports.load.warehouse import connect

    try:
        con = connect(_warehouse(args).db)
    except FileNotFoundError as exc:
        print(f"govreports query: {exc}", file=sys.stderr)
        return 1
    try:
        df = con.execute(args.sql).df()
    except duckdb.Error as exc:
        print(f"govreports query: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        sys.stdout.write(df.to_json(orient="records", force_ascii=False, date_format="iso") + "\n")
    else:
        sys.stdout.write((df.to_string(index=False) if len(df) else "(no rows)") + "\n")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from govreports.load.compare import MEASURES, chart, compare
    from govreports.load.warehouse import connect

    try:
        con = connect(_warehouse(args).db)
    except FileNotFoundError as exc:
        print(f"govreports compare: {exc}", file=sys.stderr)
        return 1
    with con:
        wide, long = compare(con, args.measure, region=args.region, years=args.years, top=args.top)
    label = MEASURES[args.measure][0].label
    scope = f" in {args.region}" if args.region else ""
    print(f"{label}{scope}, largest declines first:\n")
    print(wide.drop(columns=["agency_id"]).to_string(index=False, na_rep="") if len(wide) else "(no data)")
    if args.chart:
        path = chart(long, args.chart, f"{label}{scope}")
        print(f"\nchart: {path}")
    return EXIT_OK


def _version() -> str:
    from importlib.metadata import version

    return version("govreports")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govreports",
        description="Chinese open-government annual reports (政府信息公开工作年度报告) as one checked dataset.",
    )
    parser.add_argument("--version", action="version", version=f"govreports {_version()}")
    parser.add_argument("--warehouse", default=None, metavar="DIR",
                        help="warehouse root (default: $GOVREPORTS_WAREHOUSE or data/warehouse)")
    parser.add_argument("--db", default=None, metavar="FILE",
                        help="the DuckDB file (default: <warehouse>/govreports.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("parse", help="parse report pages (HTML or text) into the long frame, or its checks",
                       description="Parse report pages into long rows. Exit 0 when every input yielded report "
                                   "tables, 2 otherwise (one line per failed input on stderr).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to parse; '-' reads standard input")
    p.add_argument("--format", choices=("table", "csv", "jsonl"), default="table", help="output format")
    p.add_argument("--checks", action="store_true", help="print the identity checks instead of the values")
    p.add_argument("--agency", help="agency name to use instead of the one read from the page")
    p.add_argument("--year", type=int, help="report year to use instead of the one read from the page")
    p.set_defaults(func=cmd_parse)

    q = sub.add_parser("query", help="run SQL on the warehouse (read-only)",
                       description="Run one SQL statement on a read-only connection to the DuckDB warehouse.")
    q.add_argument("sql", help="the SQL to run, e.g. \"SELECT * FROM licensing_trend LIMIT 5\"")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    q.set_defaults(func=cmd_query)

    c = sub.add_parser("compare", help="yearly trend per agency, largest declines first, optionally charted",
                       description="Compare a measure across agencies and years.")
    c.add_argument("measure", choices=("licensing", "penalties", "requests"), help="what to compare")
    c.add_argument("--region", help="a region path or part of one, e.g. 浙江省/宁波市")
    c.add_argument("--years", type=_years, help="a year or a span, e.g. 2019-2024")
    c.add_argument("--top", type=int, help="only the N agencies with the largest declines")
    c.add_argument("--chart", metavar="FILE.png", help="also draw a PNG line chart of the yearly values")
    c.set_defaults(func=cmd_compare)

    def crawl_options(p: argparse.ArgumentParser, years: bool = False) -> None:
        p.add_argument("--sources", type=Path, help="the registry CSV (default: data/sources.csv)")
        p.add_argument("--site", help="base URL that fills {site} in the registry (the demo site's)")
        p.add_argument("--agency", action="append", metavar="ID", help="only this agency (repeatable)")
        p.add_argument("--region", help="only agencies in this region (a path prefix or a part, e.g. 宁波市)")
        p.add_argument("--allow-loopback", action="store_true",
                       help="allow fetching from 127.0.0.0/8 (the demo site, tests)")
        p.add_argument("--delay", type=float, default=0.5, help="seconds between requests to one host")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds before a request times out")
        if years:
            p.add_argument("--year", type=int, action="append", metavar="Y", help="only this year (repeatable)")

    def quiet_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def runner_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task-runner", choices=("thread", "dask"), default="thread",
                       help="run parse and fetch batches in threads, or on a Dask cluster (prefect-dask)")
        p.add_argument("--dask-address", help="scheduler address of a running Dask cluster (default: a local one)")

    f = sub.add_parser("fetch", help="discover and fetch report pages into the raw zone (no Prefect)",
                       description="Discover report pages on the registry's agency sites and fetch what changed. "
                                   "Exit 1 when every agency failed.")
    crawl_options(f, years=True)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fetch)

    r = sub.add_parser("run", help="run a pipeline flow (nightly) with Prefect",
                       description="Run the nightly flow: discover, fetch what changed, parse, check, load, "
                                   "refresh the views, and print a summary.")
    r.add_argument("flow", choices=("nightly",), help="the flow to run")
    crawl_options(r)
    runner_options(r)
    quiet_option(r)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("backfill", help="run the pipeline for chosen years, agencies or a region",
                       description="The nightly pipeline for a slice, e.g. every district of one city for 2019-2024.")
    b.add_argument("--years", type=_years, required=True, help="a year or a span, e.g. 2019-2024")
    crawl_options(b)
    runner_options(b)
    quiet_option(b)
    b.set_defaults(func=cmd_backfill)

    rp = sub.add_parser("reparse", help="rebuild facts, reports and checks from the raw zone (no network)",
                        description="Parse every stored page version again (after a parser upgrade) into a new "
                                    "lake, swap it in, and rebuild the database.")
    rp.add_argument("--sources", type=Path, help="the registry CSV, for agency names and regions")
    rp.add_argument("--site", help="base URL that fills {site} in the registry")
    quiet_option(rp)
    rp.set_defaults(func=cmd_reparse)

    sv = sub.add_parser("serve", help="serve the nightly flow on a Prefect server with a cron schedule",
                        description="Start (or connect to, with PREFECT_API_URL) a Prefect server on 127.0.0.1 and "
                                    "serve the nightly flow on a cron schedule until stopped.")
    sv.add_argument("--cron", default="0 2 * * *", help="cron schedule (default: 0 2 * * *)")
    sv.add_argument("--timezone", default="Asia/Shanghai", help="the schedule's time zone (default: Asia/Shanghai)")
    sv.add_argument("--port", type=int, default=4200, help="port of the Prefect server it starts (default: 4200)")
    crawl_options(sv)
    sv.set_defaults(func=cmd_serve)

    ds = sub.add_parser("demo-site", help="serve the bundled demo site (sample data) on 127.0.0.1",
                        description="Serve data/sample_site on 127.0.0.1 until Ctrl-C.")
    ds.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    ds.set_defaults(func=cmd_demo_site)

    d = sub.add_parser("demo", help="the README's main command: the nightly run on the bundled demo site",
                       description="Serve the demo site on 127.0.0.1, run the nightly flow against it, and print "
                                   "the cross-district licensing comparison and its chart.")
    d.add_argument("--port", type=int, default=18731, help="port of the demo site (default: 18731)")
    quiet_option(d)
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.warehouse is None:
        from govreports.flows.config import DEFAULT_WAREHOUSE

        args.warehouse = DEFAULT_WAREHOUSE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The `govreports` command, on typer. Subcommands import what they need when they run, so that `parse` and
`query` answer without starting Prefect (its local API takes seconds to start)."""

import dataclasses
import functools
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, NoReturn

import typer

if TYPE_CHECKING:
    from rich.progress import TaskID

    from govreports.extract.crawl import CrawlEvent
    from govreports.extract.sources import Source
    from govreports.flows.config import Warehouse

EXIT_OK, EXIT_ERROR, EXIT_FAILED_INPUT = 0, 1, 2

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


class UserError(typer.TyperException):
    """A user error: one line on standard error ("govreports COMMAND: message"), exit 1, no traceback."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class _PipeClosed(Exception):
    """Standard output's reader went away (`| head`); not an OSError, so that typer passes it on to main."""


def _fail(message: str, name: str | None = None) -> NoReturn:
    raise UserError(message, f"govreports {name}" if name else None)


# -- option groups: typer has none, so a command's parameter typed as one of these dataclasses is spelled
# out as the dataclass's options and gathered back into one value when the command runs (see _command).

WarehouseDir = Annotated[str | None, typer.Option(
    "--warehouse", metavar="DIR", help="warehouse root (default: $GOVREPORTS_WAREHOUSE or data/warehouse)")]
DbFile = Annotated[str | None, typer.Option(
    "--db", metavar="FILE", help="the DuckDB file (default: <warehouse>/govreports.duckdb)")]


@dataclass(frozen=True)
class Where:
    """--warehouse and --db, accepted before the subcommand and after it (the latter wins: see _command)."""

    warehouse: WarehouseDir = None
    db: DbFile = None

    def resolve(self) -> "Warehouse":
        from govreports.flows.config import DEFAULT_WAREHOUSE, Warehouse

        return Warehouse(self.warehouse or DEFAULT_WAREHOUSE, self.db)


@dataclass(frozen=True)
class Crawl:
    """The options of the commands that crawl (fetch, run, backfill, serve)."""

    sources: Annotated[Path | None, typer.Option(help="the registry CSV (default: data/sources.csv)")] = None
    site: Annotated[str | None, typer.Option(
        help="base URL that fills {site} in the registry (the demo site's)")] = None
    agency: Annotated[list[str] | None, typer.Option(metavar="ID", help="only this agency (repeatable)")] = None
    region: Annotated[str | None, typer.Option(
        help="only agencies in this region (a path prefix or a part, e.g. 宁波市)")] = None
    allow_loopback: Annotated[bool, typer.Option(
        "--allow-loopback", help="allow fetching from 127.0.0.0/8 (the demo site, tests)")] = False
    delay: Annotated[float, typer.Option(help="seconds between requests to one host")] = 0.5
    timeout: Annotated[float, typer.Option(help="seconds before a request times out")] = 20.0
    proxy: Annotated[str | None, typer.Option(metavar="URL", help="send every request through this proxy")] = None
    trust_env: Annotated[bool, typer.Option(
        "--trust-env", help="use the proxies HTTPS_PROXY / HTTP_PROXY / NO_PROXY name (off by default)")] = False

    def select(self) -> "list[Source]":
        """The registry's chosen agencies; a bad registry or an empty choice is a user error."""
        from govreports.extract.sources import SourcesError, load_sources, select
        from govreports.flows.config import DATA_DIR

        try:
            chosen = select(load_sources(self.sources or DATA_DIR / "sources.csv", site=self.site),
                            agencies=self.agency or None, region=self.region)
        except SourcesError as exc:
            _fail(str(exc))
        if not chosen:
            _fail("no agency selected: check --agency / --region and the sources file")
        return chosen

    def fetcher_kwargs(self) -> dict:
        return {"allow_loopback": self.allow_loopback, "delay": self.delay, "timeout": self.timeout,
                "proxy": self.proxy, "trust_env": self.trust_env}

    def flow_kwargs(self, where: Where) -> dict:
        return {"sources_file": str(self.sources) if self.sources else None, "warehouse": where.resolve().root,
                "site": self.site, "agencies": self.agency or None, "region": self.region, **self.fetcher_kwargs()}


@dataclass(frozen=True)
class Runner:
    """Where a flow runs its tasks."""

    task_runner: Annotated[Literal["thread", "dask"], typer.Option(help=(
        "run parse and fetch batches in threads, or on a Dask cluster (prefect-dask)"))] = "thread"
    dask_address: Annotated[str | None, typer.Option(
        help="scheduler address of a running Dask cluster (default: a local one)")] = None


Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bars")]


def _command(name: str, short: str, description: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """app.command, with the option groups above expanded into options."""

    def register(func: Callable[..., int]) -> Callable[..., int]:
        sig = inspect.signature(func)
        groups = {p.name: p.annotation for p in sig.parameters.values() if dataclasses.is_dataclass(p.annotation)}
        params = [p for p in sig.parameters.values() if p.name not in groups]
        params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
                   for cls in groups.values() for f in dataclasses.fields(cls)]

        @functools.wraps(func)
        def run(ctx: typer.Context, **kwargs: object) -> int:
            before = ctx.find_root().params  # --warehouse and --db given before the subcommand
            for param, cls in groups.items():
                values = {f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls)}
                kwargs[param] = cls(**{k: before.get(k) if v is None and cls is Where else v
                                       for k, v in values.items()})
            try:
                return func(**kwargs)
            except UserError as exc:
                exc.command = exc.command or ctx.command_path
                raise
            except BrokenPipeError as exc:
                raise _PipeClosed from exc

        ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
        run.__signature__ = sig.replace(parameters=[ctx, *params])  # type: ignore[attr-defined]
        return app.command(name, short_help=short, help=description)(run)

    return register


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"govreports {version('govreports')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False,
          warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Chinese open-government annual reports (政府信息公开工作年度报告) as one checked dataset."""


# -- parse, query, compare: no Prefect ---------------------------------------------------------------

@_command("parse", "parse report pages (HTML or text) into the long frame, or its checks",
          "Parse report pages into long rows. Exit 0 when every input yielded report tables, 2 otherwise "
          "(one line per failed input on stderr). Nothing is printed when no rows came out.")
def parse(paths: Annotated[list[str], typer.Argument(metavar="PATH...",
                                                     help="files to parse; '-' reads standard input")],
          format: Annotated[Literal["table", "csv", "jsonl"], typer.Option(help="output format")] = "table",
          checks: Annotated[bool, typer.Option("--checks", help="print the identity checks instead of the values")]
          = False,
          agency: Annotated[str | None, typer.Option(help="agency name to use instead of the one read from the page")]
          = None,
          year: Annotated[int | None, typer.Option(help="report year to use instead of the one read from the page")]
          = None) -> int:
    from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, frame_from_rows
    from govreports.transform.report import ParseFailure, parse_report

    rows: list[tuple] = []
    failed = 0
    for path in paths:
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        try:
            report = parse_report(data, source=path, agency=agency, year=year)
        except ParseFailure as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if report.meta.truncated:
            print(f"{path}: truncated: {'; '.join(report.meta.problems)}", file=sys.stderr)
        rows.extend(report.check_rows if checks else report.fact_rows)
    if rows:  # no rows, no output: not an empty table, nor a lone CSV header
        _print_frame(frame_from_rows(rows, CHECK_COLUMNS if checks else FACT_COLUMNS), format, checks)
    return EXIT_FAILED_INPUT if failed else EXIT_OK


def _print_frame(df, fmt: str, checks: bool) -> None:
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "jsonl":
        df.to_json(sys.stdout, orient="records", lines=True, force_ascii=False)
        sys.stdout.write("\n")
    else:
        cols = (["report_id", "rule", "subject", "expected", "actual", "status"] if checks else
                ["agency", "year", "section", "metric", "row_label", "column_label", "value", "value_status", "raw"])
        view = df[cols].copy()
        if not checks:
            view["raw"] = view["raw"].str.replace(r"\s+", " ", regex=True).str.strip()
        sys.stdout.write(view.to_string(index=False, max_colwidth=36) + "\n")


def _connect(wh: "Warehouse"):
    from govreports.load.warehouse import connect

    try:
        return connect(wh.db)
    except FileNotFoundError as exc:
        _fail(str(exc))


@_command("query", "run SQL on the warehouse (read-only)",
          "Run one SQL statement on a read-only connection to the DuckDB warehouse.")
def query(sql: Annotated[str, typer.Argument(
              help="the SQL to run, e.g. \"SELECT * FROM licensing_trend LIMIT 5\"")],
          format: Annotated[Literal["table", "csv", "json"], typer.Option(help="output format")] = "table",
          where: Where = Where()) -> int:
    import duckdb

    con = _connect(where.resolve())
    try:
        result = con.execute(sql)
        if result is None:  # DuckDB's answer to "" or a lone comment
            _fail("no SQL statement given")
        df = result.df()
    except duckdb.Error as exc:
        _fail(str(exc).replace("\n", " "))
    finally:
        con.close()
    if format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif format == "json":
        sys.stdout.write(df.to_json(orient="records", force_ascii=False, date_format="iso") + "\n")
    else:
        sys.stdout.write((df.to_string(index=False) if len(df) else "(no rows)") + "\n")
    return EXIT_OK


def _years(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        first, _, last = text.partition("-")
        span = (int(first), int(last or first))
    except ValueError:
        _fail(f"--years must look like 2019-2024 or 2021, not {text!r}")
    if span[0] > span[1]:
        _fail(f"--years {text!r}: the first is after the last")
    return span


Years = Annotated[str | None, typer.Option(metavar="Y1-Y2", help="a year or a span, e.g. 2019-2024")]


@_command("compare", "yearly trend per agency, largest declines first, optionally charted",
          "Compare a measure across agencies and years.")
def compare(measure: Annotated[Literal["licensing", "penalties", "requests"], typer.Argument(help="what to compare")],
            region: Annotated[str | None, typer.Option(help="a region path or part of one, e.g. 浙江省/宁波市")] = None,
            years: Years = None,
            top: Annotated[int | None, typer.Option(help="only the N agencies with the largest declines")] = None,
            chart: Annotated[str | None, typer.Option(
                metavar="FILE.png", help="also draw a PNG line chart of the yearly values")] = None,
            where: Where = Where()) -> int:
    return _compare(where.resolve(), measure, region, _years(years), top, chart)


def _compare(wh: "Warehouse", measure: str, region: str | None, years: tuple[int, int] | None, top: int | None,
             chart_file: str | None) -> int:
    from govreports.load.compare import MEASURES, chart, compare

    with _connect(wh) as con:
        wide, long = compare(con, measure, region=region, years=years, top=top)
    label = MEASURES[measure][0].label
    scope = f" in {region}" if region else ""
    print(f"{label}{scope}, largest declines first:\n")
    print(wide.drop(columns=["agency_id"]).to_string(index=False, na_rep="") if len(wide) else "(no data)")
    if chart_file:
        print(f"\nchart: {chart(long, chart_file, f'{label}{scope}')}")
    return EXIT_OK


# -- fetch: the crawl without Prefect ------------------------------------------------------------------

@_command("fetch", "discover and fetch report pages into the raw zone (no Prefect)",
          "Discover report pages on the registry's agency sites and fetch what changed. "
          "Exit 1 when every agency failed.")
def fetch(crawl: Crawl = Crawl(),
          year: Annotated[list[int] | None, typer.Option(metavar="Y", help="only this year (repeatable)")] = None,
          quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
          where: Where = Where()) -> int:
    from govreports.extract.fetch import Fetcher
    from govreports.flows import progress, steps
    from govreports.flows.runlock import LockHeld, RunLock

    sources = crawl.select()
    wh = where.resolve()
    try:
        with RunLock(wh.lock_dir), Fetcher(**crawl.fetcher_kwargs()) as fetcher, _Bars(quiet) as bars:
            progress.start("fetch", len(sources))
            result = steps.fetch(sources, wh, fetcher, years=year or None, on_event=bars.crawled)
    except LockHeld as exc:
        _fail(str(exc))
    print(f"{'agency':<24}{'discovered':>11}{'fetched':>9}{'changed':>9}{'unchanged':>10}{'failed':>8}"
          f"{'not readable':>14}")
    for s in result.agencies.values():
        print(f"{s.agency_id:<24}{s.discovered:>11}{s.fetched:>9}{s.new_versions:>9}{s.unchanged:>10}"
              f"{s.failed:>8}{s.not_readable:>14}")
        for error in s.errors:
            print(f"  ! {error}")
    print(f"{result.changed} changed; raw zone {wh.raw}; fetch log {wh.fetch_log}")
    return EXIT_ERROR if result.all_failed else EXIT_OK


# -- the flows ----------------------------------------------------------------------------------------

class _Bars:
    """Progress bars on standard error, one per stage of a run (fetch: agencies; parse: pages; refresh), fed
    by flows.progress; standard output carries the results. On a terminal they redraw in place; elsewhere
    rich prints them once, at the end."""

    UNITS: ClassVar[dict[str, str]] = {"fetch": "agencies", "parse": "pages", "refresh": "rebuild"}

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description:<8}[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), disable=quiet,
                                 transient=False, console=Console(stderr=True))
        self.tasks: dict[str, TaskID] = {}
        self.pages = 0

    def __enter__(self) -> "_Bars":
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
            self.tasks[stage] = self.progress.add_task(stage, total=total, unit=self.UNITS.get(stage, ""))
        self.progress.update(self.tasks[stage], completed=done, total=total)

    def crawled(self, event: "CrawlEvent") -> None:
        """`govreports fetch` runs no flow: it counts agencies done, and shows the pages seen and the latest."""
        from govreports.flows import progress

        self.pages += event.kind == "page"
        if event.kind == "done":
            progress.advance("fetch")
        self.progress.update(self.tasks["fetch"], unit=f"agencies, {self.pages} pages  {event.agency_id}: {event}"[:70])


def _run_flow(name: str, kwargs: dict, runner: Runner = Runner(), quiet: bool = False) -> int:
    from govreports.flows import pipeline
    from govreports.flows.prefect_env import local_runs

    flow = {"nightly": pipeline.nightly, "backfill": pipeline.backfill, "reparse": pipeline.reparse}[name]
    if runner.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        flow = flow.with_options(task_runner=DaskTaskRunner(address=runner.dask_address) if runner.dask_address
                                 else DaskTaskRunner())
    try:
        with _Bars(quiet), local_runs():
            summary = pipeline.RunSummary(**flow(**kwargs))
    except (pipeline.StageFailed, ValueError) as exc:
        _fail(str(exc), name)
    print(summary.text())
    return EXIT_OK


@_command("run", "run a pipeline flow (nightly) with Prefect",
          "Run the nightly flow: discover, fetch what changed, parse, check, load, refresh the views, and print "
          "a summary.")
def run(flow: Annotated[Literal["nightly"], typer.Argument(help="the flow to run")],
        crawl: Crawl = Crawl(), runner: Runner = Runner(), quiet: Quiet = False, where: Where = Where()) -> int:
    crawl.select()
    return _run_flow(flow, crawl.flow_kwargs(where), runner, quiet)


@_command("backfill", "run the pipeline for chosen years, agencies or a region",
          "The nightly pipeline for a slice, e.g. every district of one city for 2019-2024.")
def backfill(years: Annotated[str, typer.Option(metavar="Y1-Y2", help="a year or a span, e.g. 2019-2024")],
             crawl: Crawl = Crawl(), runner: Runner = Runner(), quiet: Quiet = False, where: Where = Where()) -> int:
    first, last = _years(years) or (0, -1)
    crawl.select()
    return _run_flow("backfill", {**crawl.flow_kwargs(where), "years": list(range(first, last + 1))}, runner, quiet)


@_command("reparse", "rebuild facts, reports and checks from the raw zone (no network)",
          "Parse every stored page version again (after a parser upgrade) into a new lake, swap it in, and "
          "rebuild the database.")
def reparse(sources: Annotated[Path | None, typer.Option(help="the registry CSV, for agency names and regions")]
            = None,
            site: Annotated[str | None, typer.Option(help="base URL that fills {site} in the registry")] = None,
            quiet: Quiet = False, where: Where = Where()) -> int:
    if sources is not None:
        Crawl(sources=sources, site=site).select()  # a bad registry: one line now, not a failed flow
    kwargs = {"warehouse": where.resolve().root, "sources_file": str(sources) if sources else None, "site": site}
    return _run_flow("reparse", kwargs, quiet=quiet)


@_command("serve", "serve the nightly flow on a Prefect server with a cron schedule",
          "Start (or connect to, with PREFECT_API_URL) a Prefect server on 127.0.0.1 and serve the nightly flow "
          "on a cron schedule until stopped.")
def serve(cron: Annotated[str, typer.Option(help="cron schedule")] = "0 2 * * *",
          timezone: Annotated[str, typer.Option(help="the schedule's time zone")] = "Asia/Shanghai",
          port: Annotated[int, typer.Option(help="port of the Prefect server it starts")] = 4200,
          crawl: Crawl = Crawl(), where: Where = Where()) -> int:
    from govreports.flows import schedule

    crawl.select()
    return schedule.serve(cron=cron, timezone=timezone, port=port, flow_kwargs=crawl.flow_kwargs(where))


@_command("demo-site", "serve the bundled demo site (sample data) on 127.0.0.1",
          "Serve data/sample_site on 127.0.0.1 until Ctrl-C.")
def demo_site(port: Annotated[int, typer.Option(help="port (0 picks a free one)")] = 8000) -> int:
    from govreports.flows import demo_site

    demo_site.main(port)
    return EXIT_OK


@_command("demo", "the README's main command: the nightly run on the bundled demo site",
          "Serve the demo site on 127.0.0.1, run the nightly flow against it, and print the cross-district "
          "licensing comparison and its chart.")
def demo(port: Annotated[int, typer.Option(help="port of the demo site")] = 18731, quiet: Quiet = False,
         where: Where = Where()) -> int:
    from govreports.flows import demo_site
    from govreports.flows.config import DATA_DIR

    wh = where.resolve()
    # A fixed port: the registry's URLs (and so the fetch log's) stay the same from one run to the next,
    # which is what lets a second run find nothing changed.
    try:
        server, url = demo_site.serve(port=port)
    except OSError as exc:
        _fail(f"cannot serve the demo site on 127.0.0.1:{port}: {exc.strerror or exc} (choose another with --port)")
    try:
        print(f"demo site (sample data) at {url}", flush=True)
        crawl = Crawl(sources=DATA_DIR / "sample_site" / "sources.csv", site=url, allow_loopback=True, delay=0.0,
                      timeout=10.0)
        _run_flow("nightly", crawl.flow_kwargs(where), quiet=quiet)
    finally:
        server.shutdown()
    print()
    return _compare(wh, "licensing", "浙江省/宁波市", None, None, str(Path(wh.root) / "licensing.png"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status. Errors are one line on standard error; a reader that
    stops reading (`| head`) ends the command quietly (exit 1, as Python and click do)."""
    try:
        rc = typer.main.get_command(app).main(list(argv) if argv is not None else None, prog_name="govreports",
                                              standalone_mode=False)
        sys.stdout.flush()
        return rc or EXIT_OK
    except typer.TyperException as exc:  # ours, or a bad option or argument
        ctx = getattr(exc, "ctx", None)
        command = getattr(exc, "command", None) or (ctx.command_path if ctx else "govreports")
        print(f"{command}: {exc.format_message()}", file=sys.stderr)
        return EXIT_ERROR
    except typer.Abort:
        return EXIT_ERROR
    except (BrokenPipeError, _PipeClosed):
        # Whatever is still buffered has nowhere to go: point standard output at /dev/null so that the
        # interpreter's own flush at exit finds nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""The `govreports` command, on typer. Subcommands import what they need when they run, so that `parse` and
`query` answer without starting Prefect (its local API takes seconds to start)."""

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

if TYPE_CHECKING:
    import pandas as pd

    from govreports.extract.crawl import CrawlEvent
    from govreports.extract.sources import Source
    from govreports.flows.config import Warehouse

EXIT_OK, EXIT_ERROR, EXIT_FAILED_INPUT = 0, 1, 2


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


# -- options shared by several commands (typer has no option groups): the commands declare them, and the
# helpers below read them from click's context.

WarehouseDir = Annotated[str | None, typer.Option(
    "--warehouse", metavar="DIR", help="warehouse root (default: $GOVREPORTS_WAREHOUSE or data/warehouse)")]
DbFile = Annotated[str | None, typer.Option(
    "--db", metavar="FILE", help="the DuckDB file (default: <warehouse>/govreports.duckdb)")]
Sources = Annotated[str | None, typer.Option(help="the registry CSV (default: data/sources.csv)")]
Site = Annotated[str | None, typer.Option(help="base URL that fills {site} in the registry (the demo site's)")]
Agencies = Annotated[list[str] | None, typer.Option(metavar="ID", help="only this agency (repeatable)")]
Region = Annotated[str | None, typer.Option(help="only agencies in this region (a path prefix or a part, e.g. 宁波市)")]
Loopback = Annotated[bool, typer.Option(
    "--allow-loopback", help="allow fetching from 127.0.0.0/8 (the demo site, tests)")]
Delay = Annotated[float, typer.Option(help="seconds between requests to one host")]
Timeout = Annotated[float, typer.Option(help="seconds before a request times out")]
MaxReports = Annotated[int, typer.Option(
    min=1, metavar="N", help="report pages fetched per agency per run, newest first")]
Proxy = Annotated[str | None, typer.Option(metavar="URL", help="send every request through this proxy")]
TrustEnv = Annotated[bool, typer.Option(
    "--trust-env", help="use the proxies HTTPS_PROXY / HTTP_PROXY / NO_PROXY name (off by default)")]
TaskRunner = Annotated[Literal["thread", "dask"], typer.Option(
    help="run parse and fetch batches in threads, or on a Dask cluster (prefect-dask)")]
DaskAddress = Annotated[str | None, typer.Option(
    help="scheduler address of a running Dask cluster (default: a local one)")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bars")]
Years = Annotated[str | None, typer.Option(metavar="Y1-Y2", help="a year or a span, e.g. 2019-2024")]


def _fail(ctx: typer.Context, message: str, command: str = "") -> NoReturn:
    """A user error: one line on standard error ("govreports COMMAND: message"), exit 1, no traceback."""
    print(f"{command or ctx.command_path}: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_ERROR)


def _warehouse(ctx: typer.Context) -> "Warehouse":
    """--warehouse and --db, after the subcommand, else before it."""
    from govreports.flows.config import DEFAULT_WAREHOUSE, Warehouse

    warehouse, db = (ctx.params.get(k) or ctx.find_root().params[k] for k in ("warehouse", "db"))
    return Warehouse(warehouse or DEFAULT_WAREHOUSE, db)


def _select(ctx: typer.Context, opts: dict) -> "list[Source]":
    """The agencies chosen by --sources, --site, --agency and --region; none is a user error."""
    from govreports.extract.sources import SourcesError, load_sources, select
    from govreports.flows.config import DATA_DIR

    try:
        chosen = select(load_sources(opts["sources"] or str(DATA_DIR / "sources.csv"), site=opts["site"]),
                        agencies=opts.get("agency") or None, region=opts.get("region"))
    except SourcesError as exc:
        _fail(ctx, str(exc))
    if not chosen:
        _fail(ctx, "no agency selected: check --agency / --region and the sources file")
    return chosen


FETCHER_OPTIONS = ("allow_loopback", "delay", "timeout", "proxy", "trust_env", "max_reports")


def _flow_kwargs(ctx: typer.Context, **opts: object) -> dict:
    """The crawl options (`opts` over the command's) as a flow's parameters, checked before Prefect starts."""
    opts = {**ctx.params, **opts}
    _select(ctx, opts)
    return {"sources_file": opts["sources"], "warehouse": _warehouse(ctx).root, "site": opts["site"],
            "agencies": opts["agency"] or None, "region": opts["region"], **{k: opts[k] for k in FETCHER_OPTIONS}}


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


MISSING = ""  # how a table spells a missing value (NaN, None, <NA>, NaT alike): as CSV does
_TABLE_CHUNK = 500  # rows per rich table: rich's layout time grows faster than its rows


def _cell(value: object, missing: str = MISSING) -> str:
    """A value as a table shows it: a whole number without ".0", other numbers with their own decimals."""
    import pandas as pd  # already loaded: the value comes from a frame

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return missing
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.date().isoformat()  # a DATE column (pandas reads it as a midnight timestamp)
    return str(value).replace("\t", " ").replace("\r", "")  # rich gives a tab no width: it would cut the cell


def _is_number(value: object) -> bool:
    return isinstance(value, Real | Decimal) and not isinstance(value, bool)


def _table(df: "pd.DataFrame", max_colwidth: int | None, missing: str) -> None:
    """A rich table (CJK-aware widths). Not on a terminal: no colour, no truncation, every line whole."""
    from rich import box
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    values = {name: df[name].tolist() for name in df.columns}
    cells = {name: [_cell(v, missing) for v in col] for name, col in values.items()}
    for name, col in cells.items():
        # A column of fractions rounded to d decimals (pct_change: -58.7, 73.0) prints each of its numbers
        # with d, so that 73.0 is not 73 beside -58.7; a column of mostly whole numbers (parse's values,
        # counts beside a few sums of money) keeps each number its own.
        floats = [c for v, c in zip(values[name], col, strict=True) if isinstance(v, float) and c != missing]
        places = {len(c) - c.index(".") - 1 for c in floats if "." in c and "e" not in c}
        if len(places) == 1 and 2 * sum("." in c for c in floats) > len(floats):
            d = places.pop()
            cells[name] = [format(v, f".{d}f") if isinstance(v, float) and c != missing else c
                           for v, c in zip(values[name], col, strict=True)]
    # Numbers to the right, also in a column of objects (numbers and None, as parse's values are).
    right = {name: any(_is_number(v) for v in col) and all(_is_number(v) or c == missing for v, c in
                                                           zip(col, cells[name], strict=True))
             for name, col in values.items()}
    tty = sys.stdout.isatty()
    console = Console(highlight=False, markup=False, emoji=False, soft_wrap=False)
    # Fixed widths, so that the tables of successive chunks line up as one; on a terminal, narrowed (the
    # widest columns first) until the table fits, their cells wrapped, not cut.
    widths = {name: max(cell_len(str(name)), *map(cell_len, col), 1) for name, col in cells.items()}
    if tty:
        cap, room = max_colwidth or max(widths.values()), console.width - 3 * (len(widths) - 1)
        while cap > 4 and sum(min(w, cap) for w in widths.values()) > room:
            cap -= 1
        widths = {name: min(w, cap) for name, w in widths.items()}
    else:
        console = Console(highlight=False, markup=False, emoji=False, soft_wrap=False, color_system=None,
                          width=sum(widths.values()) + 3 * len(widths))
    for start in range(0, max(len(df), 1), _TABLE_CHUNK):
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, show_header=start == 0)
        for name in df.columns:
            table.add_column(str(name), justify="right" if right[name] else "left", width=widths[name],
                             overflow="fold", no_wrap=not tty)
        for row in zip(*(col[start:start + _TABLE_CHUNK] for col in cells.values()), strict=True):
            table.add_row(*map(Text, row))
        with console.capture() as out:
            console.print(table)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in out.get().splitlines()))  # no trailing blanks


def _print(df: "pd.DataFrame", fmt: str, empty: str = "(no rows)", max_colwidth: int | None = None,
           na_rep: str = MISSING) -> None:
    """A frame on standard output: a table (`empty` when it has no rows), CSV, JSON or JSON lines. CSV and
    JSON print nulls as empty and null; a table as `na_rep`, by default MISSING, for NaN, None, <NA> alike."""
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt in ("json", "jsonl"):
        print(df.to_json(orient="records", lines=fmt == "jsonl", force_ascii=False, date_format="iso").rstrip("\n"))
    elif len(df):
        _table(df, max_colwidth, na_rep)
    else:
        print(empty)


# -- parse, query, compare: no Prefect ---------------------------------------------------------------

TABLE_COLUMNS = {  # what `parse --format table` shows, by --checks
    False: ["agency", "year", "section", "metric", "row_label", "column_label", "value", "value_status", "raw"],
    True: ["report_id", "rule", "subject", "expected", "actual", "status"],
}


@app.command(short_help="parse report pages and files (HTML, text, PDF, Word) into the long frame, or its checks")
def parse(paths: Annotated[list[str], typer.Argument(metavar="PATH...",
                                                     help="files to parse; '-' reads standard input")],
          format: Annotated[Literal["table", "csv", "jsonl"], typer.Option(help="output format")] = "table",
          checks: Annotated[bool, typer.Option("--checks", help="print the identity checks instead of the values")]
          = False,
          agency: Annotated[str | None, typer.Option(help="agency name to use instead of the one read from the page")]
          = None,
          year: Annotated[int | None, typer.Option(help="report year to use instead of the one read from the page")]
          = None) -> int:
    """Parse report pages into long rows. Exit 0 when every input yielded report tables, 2 otherwise (one line
    per failed input on stderr). Nothing is printed when no rows came out."""
    from govreports.flows.parse import parse_report
    from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS, frame_from_rows
    from govreports.transform.report import ParseFailure

    rows: list = []
    failed = 0
    for path in paths:
        try:
            report = parse_report(sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes(),
                                  source=path, agency=agency, year=year)
        except (OSError, ParseFailure) as exc:
            why = f"cannot read: {exc.strerror or exc}" if isinstance(exc, OSError) else exc
            print(f"{path}: {why}", file=sys.stderr)
            failed += 1
            continue
        if report.meta.truncated:
            print(f"{path}: truncated: {'; '.join(report.meta.problems)}", file=sys.stderr)
        rows.extend(report.check_rows if checks else report.fact_rows)
    if rows:  # no rows, no output: not an empty table, nor a lone CSV header
        df = frame_from_rows(rows, CHECK_COLUMNS if checks else FACT_COLUMNS)
        if format == "table":
            df = df[TABLE_COLUMNS[checks]]
            if not checks:
                df = df.assign(raw=df["raw"].str.replace(r"\s+", " ", regex=True).str.strip())
        _print(df, format, max_colwidth=36)
    return EXIT_FAILED_INPUT if failed else EXIT_OK


def _connect(ctx: typer.Context):
    from govreports.load.warehouse import connect

    try:
        return connect(_warehouse(ctx).db)
    except FileNotFoundError as exc:
        _fail(ctx, str(exc))


@app.command(short_help="run SQL on the warehouse (read-only)")
def query(ctx: typer.Context,
          sql: Annotated[str, typer.Argument(help="the SQL to run, e.g. \"SELECT * FROM licensing_trend LIMIT 5\"")],
          format: Annotated[Literal["table", "csv", "json", "jsonl"], typer.Option(
              help="output format (jsonl: one JSON object a line)")] = "table",
          allow_dir: Annotated[list[Path] | None, typer.Option(
              "--allow-dir", metavar="DIR", exists=True, file_okay=False,
              help="also let the SQL read files in this folder, e.g. your own CSV (repeatable)")] = None,
          warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Run one read-only statement (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) on the DuckDB warehouse. It
    reads files only under the warehouse's folder and the --allow-dir folders, and nothing on the network."""
    from govreports.load.query import QueryError, run

    try:
        df = run(_warehouse(ctx).db, sql, allow_dir or ())
    except (QueryError, FileNotFoundError) as exc:
        _fail(ctx, str(exc))
    _print(df, format)



@app.command(short_help="write a table or view of the warehouse to CSV, Excel or Parquet")
def export(ctx: typer.Context,
           view: Annotated[str, typer.Argument(help="the table or view, e.g. licensing_trend")],
           output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="the file to write")],
           format: Annotated[Literal["csv", "xlsx", "parquet"] | None, typer.Option(
               help="file format (default: FILE's suffix)")] = None,
           region: Annotated[str | None, typer.Option(
               help="only this region, as fetch --region matches it (a path prefix or a part, e.g. 宁波市)")] = None,
           years: Years = None,
           force: Annotated[bool, typer.Option("--force", help="replace FILE if it exists")] = False,
           warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Write one table or view of the warehouse, read-only, to a file: CSV (UTF-8, English column names),
    Excel (Chinese headers, metric codes with their official labels) or Parquet (the database's types)."""
    from govreports.load.export import FORMATS, ExportError, read, write

    fmt = format or output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        _fail(ctx, f"cannot tell the format of {output}: give --format {'|'.join(FORMATS)}")
    span = _years(ctx, years)
    try:
        table = read(_warehouse(ctx).db, view, region, span)
        path = write(table, output, fmt, force)
    except (ExportError, FileNotFoundError) as exc:
        _fail(ctx, str(exc))
    print(f"{table.num_rows} rows of {view} written to {path}")

def _years(ctx: typer.Context, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        first, _, last = text.partition("-")
        span = (int(first), int(last or first))
    except ValueError:
        _fail(ctx, f"--years must look like 2019-2024 or 2021, not {text!r}")
    if span[0] > span[1]:
        _fail(ctx, f"--years {text!r}: the first is after the last")
    return span


@app.command(short_help="yearly trend per agency, largest declines first, optionally charted")
def compare(ctx: typer.Context,
            measure: Annotated[Literal["licensing", "penalties", "requests"], typer.Argument(help="what to compare")],
            region: Annotated[str | None, typer.Option(
                help="a prefix of the region path or one part of it exactly, as fetch --region: 浙江, 宁波市")] = None,
            years: Years = None,
            top: Annotated[int | None, typer.Option(help="only the N agencies with the largest declines")] = None,
            format: Annotated[Literal["table", "csv", "jsonl"], typer.Option(
                help="output format; with csv and jsonl the title, missing-reports line and chart path go to stderr")]
            = "table",
            chart: Annotated[str | None, typer.Option(
                metavar="FILE.png", help="also draw a PNG line chart of the yearly values")] = None,
            warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Compare a measure across agencies and years. A region or years that select nothing: exit 1."""
    from govreports.load import compare as comparison

    span = _years(ctx, years)
    with _connect(ctx) as con:
        try:
            wide, long = comparison.compare(con, measure, region=region, years=span, top=top)
            gaps = comparison.missing(con, region, span)
        except comparison.NoMatch as exc:
            _fail(ctx, str(exc))
    title = comparison.MEASURES[measure][0].label + (f" in {region}" if region else "")
    notes = sys.stdout if format == "table" else sys.stderr  # machine formats: the data alone on stdout
    print(f"{title}, largest declines first:\n", file=notes)
    _print(wide.drop(columns=["agency_id"]), format, "(no data)", na_rep="")
    print("\n" + comparison.missing_line(gaps), file=notes)
    if chart:
        print(f"\nchart: {comparison.chart(long, chart, title)}", file=notes)


# -- fetch (no Prefect) and the flows -----------------------------------------------------------------

UNITS = {"fetch": "agencies", "parse": "pages", "refresh": "rebuild"}


@contextmanager
def _bars(quiet: bool) -> Iterator[Callable[[str, str], None]]:
    """A bar per stage of a run on standard error (standard output carries the results), fed by flows.progress;
    yields relabel(stage, unit), which changes what a bar says after its counts."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from govreports.flows import progress

    bars = Progress(TextColumn("[bold]{task.description:<8}[/bold]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), disable=quiet, console=Console(stderr=True))
    tasks: dict[str, TaskID] = {}

    def show(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total, unit=UNITS.get(stage, ""))
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        progress.listen(show)
        try:
            yield lambda stage, unit: bars.update(tasks[stage], unit=unit)
        finally:
            progress.listen(None)


@app.command(short_help="discover and fetch report pages into the raw zone (no Prefect)")
def fetch(ctx: typer.Context, sources: Sources = None, site: Site = None, agency: Agencies = None,
          region: Region = None, allow_loopback: Loopback = False, delay: Delay = 0.5, timeout: Timeout = 20.0,
          max_reports: MaxReports = 500,
          proxy: Proxy = None, trust_env: TrustEnv = False,
          year: Annotated[list[int] | None, typer.Option(metavar="Y", help="only this year (repeatable)")] = None,
          quiet: Quiet = False, warehouse: WarehouseDir = None, db: DbFile = None) -> int:
    """Discover report pages on the registry's agency sites and fetch what changed. Exit 1 when every agency
    failed."""
    from govreports.extract.fetch import Fetcher
    from govreports.flows import progress, steps
    from govreports.flows.runlock import LockHeld, RunLock

    opts, wh = ctx.params, _warehouse(ctx)
    chosen = _select(ctx, opts)
    pages = 0
    try:
        with RunLock(wh.lock_dir), Fetcher(**{k: opts[k] for k in FETCHER_OPTIONS}) as fetcher, \
                _bars(quiet) as relabel:
            def crawled(event: "CrawlEvent") -> None:  # no flow here: count agencies done, show pages seen
                nonlocal pages
                pages += event.kind == "page"
                if event.kind == "done":
                    progress.advance("fetch")
                relabel("fetch", f"agencies, {pages} pages  {event.agency_id}: {event}"[:70])

            progress.start("fetch", len(chosen))
            result = steps.fetch(chosen, wh, fetcher, years=year or None, on_event=crawled)
    except LockHeld as exc:
        _fail(ctx, str(exc))
    print(f"{'agency':<24}{'discovered':>11}{'fetched':>9}{'changed':>9}{'unchanged':>10}{'failed':>8}"
          f"{'not readable':>14}")
    for s in result.agencies.values():
        print(f"{s.agency_id:<24}{s.discovered:>11}{s.fetched:>9}{s.new_versions:>9}{s.unchanged:>10}"
              f"{s.failed:>8}{s.not_readable:>14}")
        for error in s.errors:
            print(f"  ! {error}")
    print(f"{result.changed} changed; raw zone {wh.raw}; fetch log {wh.fetch_log}")
    return EXIT_ERROR if result.all_failed else EXIT_OK


def _run_flow(ctx: typer.Context, name: str, kwargs: dict) -> None:
    """Run a flow of flows.pipeline as the command's --task-runner, --dask-address and --quiet say."""
    from govreports.flows.config import Warehouse
    from govreports.flows.runlock import LockHeld, RunLock

    # Another run holds the warehouse: one line now, before Prefect starts, rather than the flow failing
    # the same way seconds later under Prefect's traceback. The probe leaves a dead run's mark for the
    # flow's own lock to find and sweep.
    probe = RunLock(Warehouse(kwargs["warehouse"]).lock_dir)
    try:
        probe.acquire()
    except LockHeld as exc:
        _fail(ctx, str(exc), f"govreports {name}")
    except OSError:
        pass  # the flow says what is wrong with the warehouse
    else:
        if probe.needs_sweep:
            probe.keep_for_sweep()
        probe.release()
    from govreports.flows import pipeline
    from govreports.flows.prefect_env import local_runs

    flow = getattr(pipeline, name)
    if ctx.params.get("task_runner") == "dask":
        from prefect_dask import DaskTaskRunner

        flow = flow.with_options(task_runner=DaskTaskRunner(address=ctx.params["dask_address"]))
    try:
        with _bars(ctx.params["quiet"]), local_runs():
            summary = pipeline.RunSummary(**flow(**kwargs))
    except (pipeline.StageFailed, ValueError) as exc:
        _fail(ctx, str(exc), f"govreports {name}")
    print(summary.text())


@app.command(short_help="run a pipeline flow (nightly) with Prefect")
def run(ctx: typer.Context, flow: Annotated[Literal["nightly"], typer.Argument(help="the flow to run")],
        sources: Sources = None, site: Site = None, agency: Agencies = None, region: Region = None,
        allow_loopback: Loopback = False, delay: Delay = 0.5, timeout: Timeout = 20.0, proxy: Proxy = None,
        max_reports: MaxReports = 500,
        trust_env: TrustEnv = False, task_runner: TaskRunner = "thread", dask_address: DaskAddress = None,
        quiet: Quiet = False, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Run the nightly flow: discover, fetch what changed, parse, check, load, refresh the views, and print a
    summary."""
    _run_flow(ctx, flow, _flow_kwargs(ctx))


@app.command(short_help="run the pipeline for chosen years, agencies or a region")
def backfill(ctx: typer.Context,
             years: Annotated[str, typer.Option(metavar="Y1-Y2", help="a year or a span, e.g. 2019-2024")],
             sources: Sources = None, site: Site = None, agency: Agencies = None, region: Region = None,
             allow_loopback: Loopback = False, delay: Delay = 0.5, timeout: Timeout = 20.0, proxy: Proxy = None,
             max_reports: MaxReports = 500,
             trust_env: TrustEnv = False, task_runner: TaskRunner = "thread", dask_address: DaskAddress = None,
             quiet: Quiet = False, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """The nightly pipeline for a slice, e.g. every district of one city for 2019-2024."""
    first, last = _years(ctx, years) or (0, -1)
    _run_flow(ctx, "backfill", {**_flow_kwargs(ctx), "years": list(range(first, last + 1))})


@app.command(short_help="rebuild facts, reports and checks from the raw zone (no network)")
def reparse(ctx: typer.Context,
            sources: Annotated[str | None, typer.Option(help="the registry CSV, for agency names and regions")] = None,
            site: Site = None, quiet: Quiet = False, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Parse every stored page version again (after a parser upgrade) into the lake's next version (committed
    once, at the end; the old versions are kept), and rebuild the database."""
    if sources is not None:
        _select(ctx, ctx.params)  # a bad registry: one line now, not a failed flow
    _run_flow(ctx, "reparse", {"warehouse": _warehouse(ctx).root, "sources_file": sources, "site": site})


@app.command(short_help="serve the nightly flow on a Prefect server with a cron schedule")
def serve(ctx: typer.Context, cron: Annotated[str, typer.Option(help="cron schedule")] = "0 2 * * *",
          timezone: Annotated[str, typer.Option(help="the schedule's time zone")] = "Asia/Shanghai",
          port: Annotated[int, typer.Option(help="port of the Prefect server it starts")] = 4200,
          sources: Sources = None, site: Site = None, agency: Agencies = None, region: Region = None,
          allow_loopback: Loopback = False, delay: Delay = 0.5, timeout: Timeout = 20.0, proxy: Proxy = None,
          max_reports: MaxReports = 500,
          trust_env: TrustEnv = False, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Start (or connect to, with PREFECT_API_URL) a Prefect server on 127.0.0.1 and serve the nightly flow on
    a cron schedule until stopped."""
    from govreports.flows import schedule

    schedule.serve(cron=cron, timezone=timezone, port=port, flow_kwargs=_flow_kwargs(ctx))


@app.command(short_help="write a static HTML site of the warehouse (opens from disk)")
def site(ctx: typer.Context, out: Annotated[Path, typer.Argument(help="the folder to write, e.g. data/warehouse/site")],
         years: Years = None, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Write an HTML site of the warehouse into OUT: an index by region, a page per region with the trends of
    its units (charts and tables, declines first, missing reports marked), a page per agency, and the
    data-quality and coverage lists. It needs no server and fetches nothing: open OUT/index.html. Written
    inside the warehouse folder, it links each report's raw copy; elsewhere it shows the copy's sha256."""
    from govreports.load import site as html

    wh = _warehouse(ctx)
    try:
        index = html.build(wh.db, out, raw=wh.raw if wh.local_root else None, years=_years(ctx, years))
    except FileNotFoundError as exc:
        _fail(ctx, str(exc))
    print(f"site: {index}")


@app.command(short_help="serve the bundled demo site (sample data) on 127.0.0.1")
def demo_site(port: Annotated[int, typer.Option(help="port (0 picks a free one)")] = 8000) -> None:
    """Serve data/sample_site on 127.0.0.1 until Ctrl-C."""
    from govreports.flows import demo_site

    demo_site.main(port)


@app.command(short_help="the README's main command: the nightly run on the bundled demo site")
def demo(ctx: typer.Context, port: Annotated[int, typer.Option(help="port of the demo site")] = 18731,
         max_reports: MaxReports = 500,
         quiet: Quiet = False, warehouse: WarehouseDir = None, db: DbFile = None) -> None:
    """Serve the demo site on 127.0.0.1, run the nightly flow against it, and print the cross-district licensing
    comparison and its chart."""
    from govreports.flows import demo_site
    from govreports.flows.config import DATA_DIR

    # A fixed port: the registry's URLs (and so the fetch log's) stay the same from one run to the next,
    # which is what lets a second run find nothing changed.
    try:
        server, url = demo_site.serve(port=port)
    except OSError as exc:
        _fail(ctx, f"cannot serve the demo site on 127.0.0.1:{port}: {exc.strerror or exc} "
                   "(choose another with --port)")
    try:
        print(f"demo site (sample data) at {url}", flush=True)
        crawl = _flow_kwargs(ctx, sources=str(DATA_DIR / "sample_site" / "sources.csv"), site=url, agency=None,
                             region=None, allow_loopback=True, delay=0.0, timeout=10.0, proxy=None, trust_env=False)
        _run_flow(ctx, "nightly", crawl)
    finally:
        server.shutdown()
        server.server_close()
    print()
    compare(ctx, "licensing", "浙江省/宁波市", chart=str(Path(_warehouse(ctx).root) / "licensing.png"))
    site(ctx, Path(_warehouse(ctx).root) / "site")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status. Errors are one line on standard error; a reader that
    stops reading (`| head`) ends the command quietly (exit 1, as Python and click do)."""
    try:
        rc = typer.main.get_command(app).main(list(argv) if argv is not None else None, prog_name="govreports",
                                              standalone_mode=False)
        sys.stdout.flush()
        return rc or EXIT_OK
    except typer.TyperException as exc:  # a bad option or argument
        ctx = getattr(exc, "ctx", None)
        print(f"{ctx.command_path if ctx else 'govreports'}: {exc.format_message()}", file=sys.stderr)
        return EXIT_ERROR
    except typer.Abort:
        return EXIT_ERROR
    except BrokenPipeError:  # at the flush above; during a command, typer's own main handles it (exit 1)
        # Whatever is still buffered has nowhere to go: point standard output at /dev/null so that the
        # interpreter's own flush at exit finds nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""The `govreports` command. Subcommands import what they need when they run, so that `parse` and
`query` answer without starting Prefect (its local API takes seconds to start)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_FAILED_INPUT = 0, 2
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PAGES = REPO_ROOT / "data" / "sample_pages"


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def cmd_parse(args: argparse.Namespace) -> int:
    import pandas as pd

    from transform.frame import CHECK_COLUMNS, FACT_COLUMNS
    from transform.report import ParseFailure, parse_report

    frames: list[pd.DataFrame] = []
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
        frames.append(report.checks if args.checks else report.facts)
    columns = CHECK_COLUMNS if args.checks else FACT_COLUMNS
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
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


def cmd_demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from transform.report import ParseFailure, parse_report

    paths = sorted(p for p in SAMPLE_PAGES.iterdir() if p.is_file())
    summary, facts = [], []
    for path in paths:
        try:
            r = parse_report(path.read_bytes(), source=str(path.relative_to(REPO_ROOT)))
        except ParseFailure as exc:
            summary.append({"page": path.name, "error": exc.reason})
            continue
        c = r.checks
        summary.append({
            "page": path.name, "agency": r.meta.agency, "year": r.meta.year, "template": r.meta.template,
            "values": len(r.facts), "unparsed": int((r.facts["value_status"] == "unparsed").sum()),
            "checks_failed": int(((c["status"] == "fail")).sum()),
            "truncated": r.meta.truncated,
        })
        facts.append(r.facts)
    print(f"Parsed {len(paths)} bundled sample pages (sample data, see README):\n")
    print(pd.DataFrame(summary).to_string(index=False))
    if facts:
        all_facts = pd.concat(facts, ignore_index=True)
        decisions = all_facts[all_facts["metric"].isin(["licensing_decisions", "penalty_decisions"])]
        table = decisions.pivot_table(index=["agency", "year", "template"], columns="metric", values="value",
                                      aggfunc="first")
        print("\nDecisions (行政许可 / 行政处罚), one series across both templates:\n")
        print(table.to_string())
    return EXIT_OK


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
    from flows.config import Warehouse

    return Warehouse(args.warehouse, args.db)


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from load.warehouse import connect

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
    from load.compare import MEASURES, chart, compare
    from load.warehouse import connect

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govreports",
        description="Chinese open-government annual reports (政府信息公开工作年度报告) as one checked dataset.",
    )
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

    d = sub.add_parser("demo", help="the README's main command: run the pipeline on the bundled sample data",
                       description="Parse the bundled sample pages and print what they say.")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.warehouse is None:
        from flows.config import DEFAULT_WAREHOUSE

        args.warehouse = DEFAULT_WAREHOUSE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govreports",
        description="Chinese open-government annual reports (政府信息公开工作年度报告) as one checked dataset.",
    )
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

    d = sub.add_parser("demo", help="the README's main command: run the pipeline on the bundled sample data",
                       description="Parse the bundled sample pages and print what they say.")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

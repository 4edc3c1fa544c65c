"""`govreports export`: one table or view of the warehouse, optionally narrowed to a region and years, as a
CSV, Excel or Parquet file.

The data is read on the same locked read-only connection as `govreports query`; the file is written by
pyarrow (Parquet) or pandas (CSV; Excel through openpyxl) to a temporary file beside the target, then moved
into place, so a failed export leaves no half-written file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from govreports.extract.sources import region_matches
from govreports.load.query import open_locked
from govreports.transform.dictionary import DATA_DIR, entries

FORMATS = ("csv", "xlsx", "parquet")
EXCEL_MAX_ROWS = 1_048_575  # a sheet's rows, less the header


class ExportError(ValueError):
    """A one-line reason the export was not written."""


@cache
def headers() -> dict[str, str]:
    """Column name -> the Chinese header Excel shows (data/export_headers.csv)."""
    with (DATA_DIR / "export_headers.csv").open(encoding="utf-8", newline="") as f:
        return {r["column"]: r["header"] for r in csv.DictReader(f)}


@cache
def metric_labels() -> dict[str, str]:
    """Metric code -> its official label, from the dictionary's newest template (三: the row; else row and
    column, e.g. "行政许可 本年处理决定数量")."""
    newest = sorted(entries(), key=lambda e: e.templates[-1])
    return {e.metric: e.row_label if e.applicant else f"{e.row_label} {e.column_label}" for e in newest}


def _relations(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every table and view of the database -> its columns."""
    rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal "
                       "AND schema_name = 'main' ORDER BY table_name, column_index").fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


# A relation's regions, and the test that keeps the rows of a list of them: by its own `region`, else by its
# agencies' (the registry's and the reports' regions).
_AGENCY_REGIONS = "SELECT agency_id, region FROM sources UNION ALL SELECT agency_id, region FROM reports"
_BY_REGION = {
    "region": ("SELECT DISTINCT region FROM {rel}", "list_contains(?, region)"),
    "agency_id": (f"SELECT DISTINCT region FROM ({_AGENCY_REGIONS})",
                  f"agency_id IN (SELECT agency_id FROM ({_AGENCY_REGIONS}) WHERE list_contains(?, region))"),
}


def read(db: str | os.PathLike, relation: str, region: str | None = None,
         years: tuple[int, int] | None = None) -> pa.Table:
    """The relation's rows in the region (the registry's region matcher) and years. ExportError when the
    relation does not exist, cannot be filtered so, or has no such rows."""
    with open_locked(db) as con:
        relations = _relations(con)
        if relation not in relations:
            raise ExportError(f"no table or view {relation!r}: choose one of {', '.join(sorted(relations))}")
        columns, rel = relations[relation], '"' + relation.replace('"', '""') + '"'
        where, args = ["true"], []
        if region and region.strip().strip("/").strip():
            by = next((c for c in _BY_REGION if c in columns), None)
            if by is None:
                raise ExportError(f"{relation}: it has no region or agency_id column to filter by --region")
            known, test = _BY_REGION[by]
            paths = [r for (r,) in con.execute(known.format(rel=rel)).fetchall() if r and region_matches(r, region)]
            where.append(test)
            args.append(paths)
        if years:
            if "year" not in columns:
                raise ExportError(f"{relation}: it has no year column to filter by --years")
            where.append("year BETWEEN ? AND ?")
            args += list(years)
        table = con.sql(f"SELECT * FROM {rel} WHERE {' AND '.join(where)}", params=args).to_arrow_table()
    if not table.num_rows:
        narrowed = " and ".join(f for f, on in ((f"region {region!r}", region), (f"years {years}", years)) if on)
        raise ExportError(f"{relation}: no rows" + (f" in {narrowed}" if narrowed else ""))
    return table


def _frame(table: pa.Table) -> pd.DataFrame:
    """Integers as integers (nullable), not floats: arrow's own conversion turns a column with a null into
    floats."""
    return table.to_pandas(types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None)


def _csv(table: pa.Table, path: str) -> None:
    # UTF-8 with a byte-order mark: Excel then opens the Chinese text as such; pandas and DuckDB skip the mark.
    # %.15g: a count held as DOUBLE (facts.value) prints 1077, money its decimals, never 0.30000000000000004.
    _frame(table).to_csv(path, index=False, encoding="utf-8-sig", float_format="%.15g")


def _xlsx(table: pa.Table, path: str) -> None:
    if table.num_rows > EXCEL_MAX_ROWS:
        raise ExportError(f"{table.num_rows} rows do not fit an Excel sheet: narrow with --region or --years, "
                          "or write csv or parquet")
    df = _frame(table)
    for name in df.columns:  # Excel has no time zones: times are shown in UTC, as the header says
        if isinstance(df[name].dtype, pd.DatetimeTZDtype):
            df[name] = df[name].dt.tz_convert("UTC").dt.tz_localize(None)
    if "metric" in df.columns:
        df.insert(df.columns.get_loc("metric") + 1, "metric_label", df["metric"].map(metric_labels()))
    names = headers()
    df.columns = [names.get(c, c) for c in df.columns]
    df.to_excel(path, index=False, engine="openpyxl", freeze_panes=(1, 0))


WRITERS: dict[str, Callable[[pa.Table, str], None]] = {
    "csv": _csv, "xlsx": _xlsx, "parquet": lambda table, path: pq.write_table(table, path),
}


def write(table: pa.Table, path: str | os.PathLike, fmt: str, force: bool = False) -> Path:
    """Write the table as `fmt` to `path`, through a temporary file moved into place. An existing file is
    replaced only with `force`. ExportError, one line, when it cannot be written."""
    path = Path(path)
    if path.exists() and not force:
        raise ExportError(f"{path} exists: choose another file, or --force to replace it")
    if path.is_dir():
        raise ExportError(f"{path} is a folder")
    # Opened as any file is (the umask's mode); ending in the format's suffix, which pandas' Excel writer checks.
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{fmt}"))
    try:
        WRITERS[fmt](table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

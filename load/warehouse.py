"""The DuckDB warehouse that analysts open: the lake's datasets as tables, and comparison views.

The database is rebuilt from the Parquet lake into a new file that then replaces the old one
(os.replace). An analyst's open connection keeps reading the file it opened, a new connection gets
the new one: a query sees the old state or the new, never a mix, and since the loader never writes
to the file analysts have open, they never meet a lock. Analysts open it read-only (`connect`).
`lake_*` views read the Parquet files directly (absolute paths, explicit hive types) for whoever
wants the lake's live state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb

from load.lake import Lake
from load.schemas import REPORT_COLUMNS, SCHEMAS
from transform.frame import CHECK_COLUMNS, FACT_COLUMNS

VIEWS_DIR = Path(__file__).resolve().parent / "views"
BUILD_MEMORY_LIMIT = os.environ.get("GOVREPORTS_DUCKDB_MEMORY", "1GB")
_HIVE = "hive_partitioning = true, hive_types = {'year': INTEGER, 'agency': VARCHAR}"
_DUCK_TYPES = {"string": "VARCHAR", "Int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
               "datetime": "TIMESTAMPTZ"}
# Final column order of each dataset's table: agency_id first, then the declared columns.
_COLUMNS = {
    "facts": {"agency_id": "string", **FACT_COLUMNS},
    "checks": {"agency_id": "string", "year": "Int64", **CHECK_COLUMNS},
    "reports": REPORT_COLUMNS,
}


def _select(dataset: str) -> str:
    """Map a file's columns and the hive partitions to the dataset's declared columns."""
    stored = set(SCHEMAS[dataset].names)
    parts = []
    for name in _COLUMNS[dataset]:
        if name == "agency_id":
            parts.append("agency AS agency_id")
        elif name == "agency":
            parts.append("agency_name AS agency")
        elif name == "year":
            parts.append("year")
        elif name in stored:
            parts.append(f'"{name}"')
    return ", ".join(parts)


def _empty(dataset: str) -> str:
    cols = ", ".join(f'CAST(NULL AS {_DUCK_TYPES[t]}) AS "{n}"' for n, t in _COLUMNS[dataset].items())
    return f"SELECT {cols} WHERE false"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build(lake: Lake, db_path: str | os.PathLike, fetch_log_glob: str | None = None,
          on_step: Callable[[str], None] | None = None) -> Path:
    """(Re)build the warehouse file from the lake, atomically. Returns its path. `on_step(name)` is
    called after each table and view file is created (the crash tests' checkpoint)."""
    step = on_step or (lambda _name: None)
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.tmp")
    # DuckDB would take up to 80% of the machine's memory for the rebuild; a bound keeps the nightly
    # run's footprint predictable (it spills to disk beyond it).
    con = duckdb.connect(str(tmp), config={"memory_limit": BUILD_MEMORY_LIMIT})
    try:
        for dataset in ("reports", "facts", "checks"):
            source = f"read_parquet({_quote(lake.glob(dataset))}, {_HIVE})"
            present = lake.has_files(dataset)  # a listing of the lake: once per dataset
            select = f"SELECT {_select(dataset)} FROM {source}" if present else _empty(dataset)
            if dataset == "checks":  # give each check its agency's name, as facts have it
                select = (f"SELECT c.agency_id, r.agency, c.* EXCLUDE (agency_id) FROM ({select}) c "
                          "LEFT JOIN reports_all_versions r USING (report_id)")
            con.execute(f"CREATE TABLE {dataset}_all_versions AS {select}")
            step(f"{dataset}_all_versions")
            if present:
                con.execute(f"CREATE VIEW lake_{dataset} AS SELECT * FROM {source}")
        if fetch_log_glob:
            con.execute(f"CREATE VIEW fetch_log AS SELECT * FROM read_parquet({_quote(fetch_log_glob)})")
        for sql in sorted(VIEWS_DIR.glob("*.sql")):
            con.execute(sql.read_text(encoding="utf-8"))
            step(sql.name)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, db_path)
    wal = tmp.with_name(tmp.name + ".wal")
    if wal.exists():
        wal.unlink()
    return db_path


def connect(db_path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A read-only connection for analysts and `govreports query`."""
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run the pipeline first (govreports run nightly)")
    return duckdb.connect(str(path), read_only=True)

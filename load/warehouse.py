"""The DuckDB warehouse that analysts open: the lake's datasets as tables, and comparison views.

The database is built from a version of the Parquet lake (or refreshed from the files the lake's commits added
since) into a new file that then replaces the old one (os.replace). An analyst's open connection keeps reading
the file it opened, a new connection gets the new one: a query sees the old state or the new, never a mix, and
since the loader never writes to the file analysts have open, they never meet a lock. Analysts open it
read-only (`connect`). A lake file whose checksum no longer matches is not loaded (its load's files of that
year are left out) and is listed in `lake_tampered`. The database carries its dictionary: the table
`metrics` (data/dictionary.csv) and a comment on every table, view and column (data/columns.csv).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import duckdb
import pandas as pd
import pyarrow as pa

from govreports.data.schema import CHECKS, FACTS, FETCH_LOG, REPORTS, SOURCES, TYPES, Column, arrow_schema
from govreports.extract.fetchlog import Sightings
from govreports.load import rollup
from govreports.load.lake import DATASETS, DECIDED_AT_BUILD, REPORT_COLUMNS, Lake, Snapshot, Tampered
from govreports.transform.dictionary import entries, read_csv
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS

log = logging.getLogger(__name__)
VIEWS_DIR = Path(str(resources.files("govreports.load") / "views"))
BUILD_MEMORY_LIMIT = os.environ.get("GOVREPORTS_DUCKDB_MEMORY", "256MB")
# Files read per statement and per connection. DuckDB keeps state for every Parquet file a database
# instance has read (its object cache) and buffers parallel scans to keep insertion order: over one
# glob of the whole lake that grows with the lake (BENCHMARKS.md, Scale, Round 3). Chunks on fresh
# connections keep it flat.
BUILD_CHUNK_FILES = 5000
# Insertion order is not a promise of the tables (queries order what they show); keeping it costs
# DuckDB buffers across many small files.
_BUILD_CONFIG = {"memory_limit": BUILD_MEMORY_LIMIT, "preserve_insertion_order": "false"}
# facts.value is DOUBLE: it holds counts and money (万元) alike. A count is an integer that a DOUBLE
# holds exactly, else null (a fraction or 17 digits is no count a report prints, and null can neither
# overflow nor round): the views and the checks table read counts through this, so they are BIGINT.
_AS_COUNT = ("CREATE OR REPLACE MACRO as_count(v) AS "
             "CASE WHEN v = trunc(v) AND abs(v) <= 9007199254740992 THEN CAST(v AS BIGINT) END")
_HIVE = "hive_partitioning = true, hive_types = {'year': BIGINT}"
_DUCK_TYPES = {t.pandas: t.duckdb for t in TYPES.values()}  # pandas dtype -> DuckDB type
_COUNTS = ("expected", "actual")  # checks' sides: every identity (data/identities.csv) is on counts
# Each dataset's table: its columns in order, from the files and the hive partitions (year, agency_id).
_COLUMNS = {
    "facts": {"agency_id": "string", **FACT_COLUMNS},
    "checks": {"agency_id": "string", "agency": "string", "year": "Int64", **CHECK_COLUMNS,
               **dict.fromkeys(_COUNTS, "Int64")},
    "reports": {n: t for n, t in REPORT_COLUMNS.items() if n not in DECIDED_AT_BUILD},
}
# The table each dataset's files are loaded into: reports_all_versions is made from reports_stored and
# the fetch log's sightings by load/views/10_current.sql.
_LOADED = {"facts": "facts_all_versions", "checks": "checks_all_versions", "reports": "reports_stored"}
# Subsets of a loaded table kept beside it, for the views that read only a few metrics of every report: a trend
# view reads three metrics' rows instead of filtering every fact row at each query. Like the loaded tables they
# hold every version, and a refresh adds the new files' rows to them.
_SUBSETS = {"decision_facts_all_versions": (
    "facts", "metric IN ('licensing_decisions', 'penalty_decisions', 'coercion_decisions')")}
_TAMPERED = pa.schema([(name, pa.int64() if name == "year" else pa.string()) for name in Tampered._fields])
_ARROW_DUCK = {pa.int64(): "BIGINT", pa.string(): "VARCHAR"}
# When each version was last seen and the year its link names (FetchLog.versions()): 10_current.sql decides
# the current version by the first, 15_coverage.sql takes the years the runs covered from the second.
_SIGHTINGS = "report_versions_seen"  # kept from build to build: a refresh adds the sightings logged since
_SEEN = pa.schema([("url", pa.string()), ("sha256", pa.string()), ("last_seen", pa.timestamp("us", tz="UTC")),
                   ("year", pa.int64())])

# What each column of the database means: data/columns.csv (object, column, description; an empty column
# is the object's own comment), else, in order, what it says of the objects and what data/schema.py says of
# the datasets the object shows.
_SHOWS: dict[str, tuple[str | tuple[Column, ...], ...]] = {
    **dict.fromkeys(("facts", "facts_all_versions", "decision_facts_all_versions", "requests", "request_outcomes",
                     "review_litigation"), (FACTS,)),
    **dict.fromkeys(("checks", "checks_all_versions", "cross_year_checks"), (CHECKS, FACTS)),
    **dict.fromkeys(("reports", "reports_all_versions", "reports_stored", "data_quality", "coverage"), (REPORTS,)),
    **dict.fromkeys(("licensing_trend", "enforcement_trend"), ("decisions_trend", REPORTS, FACTS)),
    "decisions_trend": (REPORTS, FACTS),
    "narrative_checks": (CHECKS, REPORTS),
    "timeliness": (REPORTS,),
    "sources": (SOURCES,),
    "fetch_log": (FETCH_LOG,),
}
_MAIN = "database_name = current_database() AND schema_name = 'main'"
_OBJECTS = (f"SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE {_MAIN} UNION ALL "
            f"SELECT view_name, 'VIEW' FROM duckdb_views() WHERE {_MAIN} AND NOT internal")


def _dictionary_cells() -> pa.Table:
    """data/dictionary.csv, one row per cell and template (load/views/90_metrics.sql makes `metrics`)."""
    return pa.Table.from_pylist([
        {"position": i, "metric": e.metric, "section": e.section, "block": e.block, "applicant": e.applicant,
         "template": t, "row_label": e.row_label, "column_label": e.column_label, "unit": e.unit, "kind": e.kind,
         "continues": e.continues} for i, e in enumerate(entries()) for t in e.templates])


def described(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str | None]:
    """(object, column) -> its description, for every table and view of the database ("" as the column: the
    object itself) and every column of them; None where neither data/columns.csv nor data/schema.py says."""
    said: dict[str, dict[str, str]] = {}
    for r in read_csv("columns.csv"):
        said.setdefault(r["object"], {})[r["column"]] = r["description"]
    names = con.execute(f"SELECT name, '' FROM ({_OBJECTS}) t(name, kind) UNION ALL "
                        f"SELECT table_name, column_name FROM duckdb_columns() WHERE {_MAIN}").fetchall()
    def meaning(source: str | tuple[Column, ...]) -> dict[str, str]:
        return said.get(source, {}) if isinstance(source, str) else {c.name: c.meaning for c in source}

    out = {}
    for obj, col in names:  # an object's own comment is never another's
        chain = [said.get(obj, {}), *(map(meaning, _SHOWS.get(obj, ())) if col else ())]
        out[obj, col] = next((d[col] for d in chain if d.get(col)), None)
    return out


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    """COMMENT ON every table, view and column that has a description: one transaction."""
    kinds = dict(con.execute(_OBJECTS).fetchall())
    sql = [f'COMMENT ON COLUMN "{o}"."{c}" IS {_quote(text)}' if c else f'COMMENT ON {kinds[o]} "{o}" IS {_quote(text)}'
           for (o, c), text in described(con).items() if text]
    con.execute("BEGIN; " + "; ".join(sql) + "; COMMIT")


def _empty(dataset: str) -> str:
    cols = ", ".join(f'CAST(NULL AS {_DUCK_TYPES[t]}) AS "{n}"' for n, t in _COLUMNS[dataset].items())
    return f"SELECT {cols} WHERE false"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _select_from(dataset: str, source: str | None) -> str:
    """The SELECT that reads a relation (a read_parquet call or a registered Arrow dataset) as the dataset's
    table; None: no rows."""
    if source is None:
        return _empty(dataset)
    columns = ", ".join(f'as_count("{n}") AS "{n}"' if dataset == "checks" and n in _COUNTS else f'"{n}"'
                        for n in _COLUMNS[dataset])
    return f"SELECT {columns} FROM {source}"


def _source(con: duckdb.DuckDBPyConnection, lake: Lake, dataset: str, files: list[str]) -> str | None:
    """These data files as a relation: DuckDB reads local files itself; an object store's through a pyarrow
    dataset (DuckDB's own S3 reader is an extension that may not be installable)."""
    if not files:
        return None
    if lake.local:
        return f"read_parquet([{', '.join(map(_quote, files))}], {_HIVE})"
    name = f"lake_source_{dataset}"
    con.register(name, lake.dataset(dataset, files))
    return name


def _seen(versions: pd.DataFrame | None) -> pa.Table:
    if versions is None or versions.empty:
        return _SEEN.empty_table()
    return pa.Table.from_pandas(versions.reindex(columns=_SEEN.names), preserve_index=False).cast(_SEEN)


class BuiltFrom(NamedTuple):
    """What a database says it was built from (its build_info)."""

    lake: str
    versions: dict[str, int]
    log_upto: datetime | None = None  # the fetch log's latest attempt its sightings hold
    log_attempts: int | None = None  # the attempts the log held then


def built_from(db_path: str | os.PathLike) -> BuiltFrom | None:
    """The lake and table versions a database reflects; None when it cannot say (none, an older version's)."""
    path = Path(db_path)
    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT lake, versions, log_upto, log_attempts FROM build_info").fetchone()
    except duckdb.Error:
        return None
    return None if row is None or row[1] is None else BuiltFrom(row[0], json.loads(row[1]), row[2], row[3])


def _drop_derived(con: duckdb.DuckDBPyConnection) -> None:
    """Everything but the loaded tables, to be made again from them."""
    for (name,) in con.execute(f"SELECT view_name FROM duckdb_views() WHERE {_MAIN} AND NOT internal").fetchall():
        con.execute(f'DROP VIEW "{name}"')
    for (name,) in con.execute(f"SELECT DISTINCT function_name FROM duckdb_functions() WHERE {_MAIN} "
                               "AND function_type IN ('macro', 'table_macro') AND NOT internal").fetchall():
        con.execute(f'DROP MACRO IF EXISTS "{name}"; DROP MACRO TABLE IF EXISTS "{name}"')
    keep = {*_LOADED.values(), *_SUBSETS, "lake_tampered", _SIGHTINGS, "region_rollup"}  # region_rollup: load/rollup.py
    for (name,) in con.execute(f"SELECT table_name FROM duckdb_tables() WHERE {_MAIN}").fetchall():
        if name not in keep:
            con.execute(f'DROP TABLE "{name}"')


def build(lake: Lake, db_path: str | os.PathLike, fetch_log_glob: str | None = None,
          on_step: Callable[[str], None] | None = None, versions: pd.DataFrame | None = None,
          sources: Iterable[Mapping[str, str]] | None = None, full: bool = False,
          sightings: Callable[[datetime | None], Sightings] | None = None) -> Path:
    """Bring the warehouse file up to the lake's latest snapshot, atomically. Returns its path. When the
    database was built from an earlier version of this lake and the lake has only gained rows since, it is
    refreshed: a copy takes the new files' rows only, and its tables and views are made again from the
    loaded tables; otherwise (or `full`) it is rebuilt from every file. `versions`: the fetch log's versions
    (FetchLog.versions(): url, sha256, last_seen, year), from which the current version of each report is
    decided. `sightings` (FetchLog.sightings), instead of `versions`: a refresh then adds the sightings of the
    attempts logged since the database was built to those it holds, instead of reading the whole log.
    `sources`: the registry's agencies (data/schema.py SOURCES), the rows of `coverage`; without them it covers
    the agencies the lake holds. `on_step(name)` is called after each table and view file is created (the crash
    tests' checkpoint)."""
    step = on_step or (lambda _name: None)
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.tmp")
    snapshot = lake.snapshot()
    before = None if full else built_from(db_path)
    added = lake.changes(before.versions, snapshot) if before is not None and before.lake == lake.uri else None
    seen = _sightings(before if added is not None else None, sightings, versions)
    try:
        if added is None:
            _load_all(lake, snapshot, tmp, step)
        else:
            shutil.copyfile(db_path, tmp)  # readers keep the old file; the copy takes the new rows
            _load_added(lake, added, tmp, step)
        with duckdb.connect(str(tmp), config=_BUILD_CONFIG) as con:
            _store_sightings(con, seen)
            _derive(con, lake, snapshot, fetch_log_glob, seen, sources, step)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    os.replace(tmp, db_path)
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return db_path


def _sightings(before: BuiltFrom | None, read: Callable[[datetime | None], Sightings] | None,
               versions: pd.DataFrame | None) -> Sightings:
    """The sightings to store: those since the database's build when it holds the rest (`before`: a refresh)
    and the log holds exactly what it held then and what came after; else the whole log's."""
    if read is None:
        return Sightings(versions if versions is not None else pd.DataFrame(columns=_SEEN.names), None, None, 0, 0)
    if before is not None and before.log_upto is not None and before.log_attempts is not None:
        since = read(before.log_upto)
        if since.attempts == before.log_attempts + since.attempts_after:
            return since
        log.warning("the fetch log holds attempts from before the last build that it did not hold then (a clock "
                    "set back, a log restored): every version's sightings are read again")
    return read(None)


def _store_sightings(con: duckdb.DuckDBPyConnection, seen: Sightings) -> None:
    """The table of each version's sightings: made from `seen`, or `seen` (attempts after the database's build)
    added to it: the later sighting, and the year of the latest attempt that gave one."""
    con.register("sighted", _seen(seen.versions))
    if seen.after is None:
        con.execute(f"CREATE OR REPLACE TABLE {_SIGHTINGS} AS SELECT * FROM sighted")
    else:
        con.execute(f"""
            MERGE INTO {_SIGHTINGS} s USING sighted n ON s.url = n.url AND s.sha256 = n.sha256
            WHEN MATCHED THEN UPDATE SET last_seen = greatest(s.last_seen, n.last_seen),
                                         "year" = coalesce(n."year", s."year")
            WHEN NOT MATCHED THEN INSERT BY NAME""")
    con.unregister("sighted")


def _insert_tampered(con: duckdb.DuckDBPyConnection, tampered: list[Tampered]) -> None:
    con.register("tampered", pa.Table.from_pylist([t._asdict() for t in tampered], schema=_TAMPERED))
    con.execute("INSERT INTO lake_tampered SELECT * FROM tampered")
    con.unregister("tampered")


def _load_all(lake: Lake, snapshot: Snapshot, tmp: Path, step: Callable[[str], None]) -> None:
    """Every file of the snapshot into a new database file."""
    files, tampered = lake.verify(snapshot.files)
    for dataset in DATASETS:
        paths = files.get(dataset, [])
        for i in range(0, max(len(paths), 1), BUILD_CHUNK_FILES):  # no files: one empty table
            with duckdb.connect(str(tmp), config=_BUILD_CONFIG) as con:
                con.execute(_AS_COUNT)
                chunk = _select_from(dataset, _source(con, lake, dataset, paths[i:i + BUILD_CHUNK_FILES]))
                con.execute(f"INSERT INTO {_LOADED[dataset]} {chunk}" if i else
                            f"CREATE TABLE {_LOADED[dataset]} AS {chunk}")
        step(_LOADED[dataset])
    with duckdb.connect(str(tmp), config=_BUILD_CONFIG) as con:
        for name, (dataset, where) in _SUBSETS.items():
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {_LOADED[dataset]} WHERE {where}")
        con.execute(f"CREATE TABLE lake_tampered ({', '.join(f'{f.name} {_ARROW_DUCK[f.type]}' for f in _TAMPERED)})")
        _insert_tampered(con, tampered)


def _load_added(lake: Lake, added: Mapping[str, list[str]], tmp: Path, step: Callable[[str], None]) -> None:
    """The rows of the files added since the copied database was built: only those files are read."""
    files, tampered = lake.verify(added)
    with duckdb.connect(str(tmp), config=_BUILD_CONFIG) as con:
        _drop_derived(con)
        con.execute(_AS_COUNT)
        for name, (dataset, where) in _SUBSETS.items():  # a database built before the subset existed
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM {_LOADED[dataset]} WHERE {where}")
        for dataset in DATASETS:
            if files.get(dataset):
                rows = _select_from(dataset, _source(con, lake, dataset, files[dataset]))
                con.execute(f"INSERT INTO {_LOADED[dataset]} {rows}")
                for name, (subset_of, where) in _SUBSETS.items():
                    if subset_of == dataset:  # the new files read again: only theirs
                        con.execute(f"INSERT INTO {name} SELECT * FROM ({rows}) WHERE {where}")
            step(_LOADED[dataset])
        _insert_tampered(con, tampered)


def _derive(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: Snapshot, fetch_log_glob: str | None,
            seen: Sightings, sources: Iterable[Mapping[str, str]] | None, step: Callable[[str], None]) -> None:
    """The tables and views made from the loaded tables, the fetch log's sightings (stored) and the registry."""
    con.execute(_AS_COUNT)
    con.register("dictionary_cells", _dictionary_cells())
    con.register("registry", pa.Table.from_pylist(list(sources or ()), schema=arrow_schema(SOURCES)))
    con.execute("CREATE TABLE sources AS SELECT * FROM registry")
    if fetch_log_glob:
        # union_by_name: files written before a column was added read as null there
        con.execute("CREATE VIEW fetch_log AS SELECT * FROM "
                    f"read_parquet({_quote(fetch_log_glob)}, union_by_name = true)")
    for sql in sorted(VIEWS_DIR.glob("*.sql")):
        con.execute(sql.read_text(encoding="utf-8"))
        step(sql.name)
    rollup.update(con)
    step("region_rollup")
    con.execute("CREATE TABLE build_info (lake VARCHAR, versions VARCHAR, built_at TIMESTAMPTZ, "
                "log_upto TIMESTAMPTZ, log_attempts BIGINT)")
    con.execute("INSERT INTO build_info VALUES (?, ?, now(), ?, ?)",
                [lake.uri, json.dumps(snapshot.versions), seen.upto, seen.attempts if seen.upto else None])
    _comment(con)
    con.execute("CHECKPOINT")


def loaded_report_ids(db_path: str | os.PathLike, lake: Lake) -> set[str] | None:
    """The report versions of the database, when it was built from this lake: then they are the lake's
    as of that build, read from one file instead of every lake file. None when it cannot say
    (no database, one built from another lake or by an older version)."""
    built = built_from(db_path)
    if built is None or built.lake != lake.uri:
        return None
    try:
        with duckdb.connect(str(db_path), read_only=True) as con:
            return {rid for (rid,) in con.execute("SELECT report_id FROM reports_all_versions").fetchall()}
    except duckdb.Error:
        return None


def connect(db_path: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A read-only connection for analysts and `govreports query`."""
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run the pipeline first (govreports run nightly)")
    return duckdb.connect(str(path), read_only=True)

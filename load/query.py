"""What `govreports query` runs: one statement that only reads, on a DuckDB that cannot write, reach the
network, install or load extensions, or read files outside the folders it is given.

DuckDB does the file and network policy (`enable_external_access` off, with `allowed_directories`) and
keeps it (`lock_configuration`); the statement type does the rest, as the warehouse's own folder is
readable and a COPY or EXPORT into it would pass the file policy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from govreports.load.warehouse import connect

# DESCRIBE, SHOW, SUMMARIZE, VALUES and FROM-first queries parse as SELECT too. EXPLAIN only plans,
# but EXPLAIN ANALYZE runs what it explains: then that must be a SELECT.
READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_ANALYZE = re.compile(r"\banaly[sz]e\b", re.IGNORECASE)


class QueryError(ValueError):
    """The statement was refused, or DuckDB failed it: a one-line reason."""


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without the excerpt of the SQL that it adds from a "LINE n:" line on."""
    lines = str(exc).splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith("LINE ")), len(lines))
    return " ".join(line.strip() for line in lines[:cut] if line.strip())


def _kinds(sql: str) -> list[duckdb.StatementType | None]:
    """The type of each statement in `sql`; None for a type this duckdb's Python binding cannot name."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    kinds = []
    for statement in statements:
        try:
            kinds.append(statement.type)
        except ValueError:
            kinds.append(None)
    return kinds


def check(sql: str) -> None:
    """Refuse anything but one read-only statement."""
    kinds = _kinds(sql)
    names = [k.name if k else "this statement" for k in kinds]
    if not kinds:
        raise QueryError("no SQL statement given")
    if len(kinds) > 1:
        raise QueryError(f"one statement per call, not {len(kinds)} ({', '.join(names)})")
    if kinds[0] == duckdb.StatementType.EXPLAIN and (analyze := _ANALYZE.search(sql)):
        try:
            explained = _kinds(sql[analyze.end():])
        except QueryError:
            explained = []
        if explained != [duckdb.StatementType.SELECT]:
            raise QueryError("the warehouse is read-only here: EXPLAIN ANALYZE runs only a SELECT")
    elif kinds[0] not in READ_ONLY:
        raise QueryError(f"the warehouse is read-only here: {names[0]} refused (one SELECT, DESCRIBE, SHOW, "
                         "SUMMARIZE or EXPLAIN per call)")


def folders(db_path: str | os.PathLike, extra: Iterable[str | os.PathLike] = ()) -> list[str]:
    """The folders a query may read: the database's (its lake_* and fetch_log views read Parquet files
    under it) and `extra`, each as written and as resolved, ending in a separator (a prefix)."""
    dirs = [Path(db_path).parent, *map(Path, extra)]
    return sorted({os.path.join(form, "") for d in dirs for form in (os.path.abspath(d), str(d.resolve()))})


def open_locked(db_path: str | os.PathLike, readable: Iterable[str | os.PathLike] = ()) -> duckdb.DuckDBPyConnection:
    """A read-only connection that reads files only under `folders(db_path, readable)`, with its
    configuration locked."""
    con = connect(db_path)
    allowed = "[" + ", ".join("'" + d.replace("'", "''") + "'" for d in folders(db_path, readable)) + "]"
    for setting in ("autoinstall_known_extensions = false", "autoload_known_extensions = false",
                    f"allowed_directories = {allowed}", "enable_external_access = false",
                    "lock_configuration = true"):
        con.execute(f"SET {setting}")
    return con


def run(db_path: str | os.PathLike, sql: str, readable: Iterable[str | os.PathLike] = ()) -> pd.DataFrame:
    """One read-only statement on the warehouse, as a frame. QueryError when refused or failed;
    FileNotFoundError when there is no warehouse."""
    check(sql)
    with open_locked(db_path, readable) as con:
        try:
            return con.execute(sql).df()
        except duckdb.PermissionException as exc:
            raise QueryError(f"{_one_line(exc)} (a query reads files only under the warehouse's folder and "
                             "those given with --allow-dir)") from None
        except duckdb.Error as exc:
            raise QueryError(_one_line(exc)) from None

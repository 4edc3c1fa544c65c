"""`govreports query` only reads: each attack of issue #14 exits 1 with one line, and nothing is written,
read from outside the warehouse's folder, or fetched; ordinary queries, the lake_* views and the fetch log
still work, and --allow-dir opens one more folder to reading."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from govreports.extract.fetchlog import FetchLog
from govreports.load.lake import Lake
from govreports.load.query import open_locked
from govreports.load.warehouse import build
from tests import CLI
from tests.httpserver import Reply, serve
from tests.loadhelp import bundle

ROOT = Path(__file__).resolve().parent.parent
SECRET = "not-for-analysts-4f1c"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    """A real warehouse (lake, fetch log, database) at <tmp>/wh, a secret file beside it (outside)."""
    base = tmp_path_factory.mktemp("ro")
    root = base / "wh"
    lake = Lake(str(root / "parquet"))
    lake.write([bundle("330212-jtj", "鄞州区交通运输局", 2019 + i, "2019", v, 5) for i, v in enumerate([23285, 16363])])
    FetchLog(root / "fetch_log").append([{"url": "http://127.0.0.1/330212-jtj/2019.html", "outcome": "new",
                                          "sha256": "ab" * 32, "status": 200}])
    build(lake, root / "govreports.duckdb", fetch_log_glob=str(root / "fetch_log" / "*.parquet"))
    (base / "secret.txt").write_text(SECRET)
    return root


def query(wh: Path, sql: str, *more: str, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)} if home else None  # DuckDB installs extensions under ~/.duckdb
    return subprocess.run([*CLI, "--warehouse", str(wh), "query", sql, *more], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def refused(out: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 1, nothing on standard output, one line on standard error that says `words`."""
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("govreports query: "), out.stderr
    assert SECRET not in out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def lake_file(wh: Path) -> Path:
    return next((wh / "parquet" / "facts").rglob("*.parquet"))


def files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def test_copy_to_a_file_writes_nothing(wh, tmp_path):
    refused(query(wh, f"COPY (SELECT * FROM facts) TO '{tmp_path / 'out.csv'}'"), "read-only", "COPY")
    assert not (tmp_path / "out.csv").exists()


def test_copy_over_a_lake_file_leaves_it_as_it_was(wh):
    # The warehouse's folder is readable (its views read the lake), so the statement type refuses this.
    target = lake_file(wh)
    before, listing = target.read_bytes(), files(wh)
    refused(query(wh, f"COPY (SELECT * REPLACE (value * 10 AS value) FROM read_parquet('{target}')) "
                      f"TO '{target}' (FORMAT parquet)"), "read-only", "COPY")
    assert target.read_bytes() == before and files(wh) == listing


def test_export_database_writes_nothing(wh, tmp_path):
    refused(query(wh, f"EXPORT DATABASE '{tmp_path / 'dump'}'"), "read-only", "EXPORT")
    refused(query(wh, f"EXPORT DATABASE '{wh / 'dump'}'"), "read-only", "EXPORT")
    assert not (tmp_path / "dump").exists() and not (wh / "dump").exists()


@pytest.mark.parametrize("sql", ["PRAGMA profiling_output = '{out}'", "SET profiling_output = '{out}'",
                                 "PRAGMA enable_profiling = 'json'"])
def test_profiling_output_is_refused(wh, tmp_path, sql):
    refused(query(wh, sql.format(out=tmp_path / "profile.json")), "read-only")
    assert list(tmp_path.iterdir()) == []


def test_several_statements_run_none(wh, tmp_path):
    out = tmp_path / "second.csv"
    refused(query(wh, f"SELECT 1; COPY (SELECT 1) TO '{out}'"), "one statement per call", "SELECT, COPY")
    assert not out.exists()


def test_explain_analyze_runs_only_a_select(wh, tmp_path):
    out = tmp_path / "explained.csv"
    refused(query(wh, f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'"), "read-only")
    assert not out.exists()
    plan = query(wh, "EXPLAIN ANALYZE SELECT count(*) FROM facts")
    assert plan.returncode == 0, plan.stderr


@pytest.mark.parametrize("path", ["{secret}", "{wh}/../secret.txt", "/etc/shadow", "/etc/passwd"])
def test_files_outside_the_warehouse_are_not_read(wh, path):
    sql = f"SELECT * FROM read_text('{path.format(secret=wh.parent / 'secret.txt', wh=wh)}')"
    line = refused(query(wh, sql), "Permission Error", "--allow-dir")
    assert "root:" not in line
    refused(query(wh, f"SELECT * FROM glob('{wh.parent}/*')"), "Permission Error")


@pytest.mark.parametrize("sql", ["INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs FROM core",
                                 "SELECT * FROM read_csv('https://extensions.duckdb.org/x.csv')"])
def test_no_extension_is_installed_or_loaded(wh, tmp_path, sql):
    refused(query(wh, sql, home=tmp_path))
    assert not (tmp_path / ".duckdb").exists()


@pytest.fixture
def server():
    yield from serve()


@pytest.mark.parametrize("sql", ["SELECT * FROM read_csv('{url}')", "SELECT * FROM read_text('{url}')",
                                 "SELECT * FROM read_parquet('{url}')"])
def test_nothing_is_fetched(wh, server, tmp_path, sql):
    server.route("/x.csv", Reply(body="a,b\n1,2\n"))
    refused(query(wh, sql.format(url=server.url("/x.csv")), home=tmp_path))
    assert server.count("/x.csv") == 0
    assert not (tmp_path / ".duckdb").exists()


def test_the_configuration_is_locked(wh):
    # SET is refused before it reaches DuckDB; below that, DuckDB itself keeps the settings.
    refused(query(wh, "SET enable_external_access = true"), "read-only", "SET")
    with open_locked(wh / "govreports.duckdb") as con:
        for setting in ("enable_external_access = true", "allowed_directories = ['/']",
                        "autoload_known_extensions = true", "lock_configuration = false"):
            with pytest.raises(duckdb.Error, match=r"locked|Cannot change"):
                con.execute(f"SET {setting}")


def test_statements_that_write_the_database_are_refused(wh):
    before = (wh / "govreports.duckdb").read_bytes()
    for sql in ("DROP TABLE facts_all_versions", "CREATE TABLE t AS SELECT 1", "ATTACH ':memory:' AS m",
                "CHECKPOINT", "UPDATE EXTENSIONS", "PREPARE p AS SELECT 1", "CALL pragma_version()"):
        refused(query(wh, sql), "read-only")
    assert (wh / "govreports.duckdb").read_bytes() == before


def test_reading_the_warehouse_still_works(wh):
    sqls = {
        "SELECT agency, year, decisions FROM licensing_trend ORDER BY year": [
            "agency,year,decisions", "鄞州区交通运输局,2019,23285", "鄞州区交通运输局,2020,16363"],
        "SELECT count(*) > 0 AS ok FROM facts_all_versions": ["ok", "True"],
        "SELECT year, count(*) > 0 AS ok FROM reports_all_versions GROUP BY year ORDER BY year": [
            "year,ok", "2019,True", "2020,True"],
        "SELECT url, outcome FROM fetch_log": ["url,outcome", "http://127.0.0.1/330212-jtj/2019.html,new"],
        f"SELECT count(*) AS n FROM read_parquet('{lake_file(wh)}')": None,
        "DESCRIBE facts": None,
        "SHOW TABLES": None,
    }
    for sql, want in sqls.items():
        out = query(wh, sql, "--format", "csv")
        assert out.returncode == 0, (sql, out.stderr)
        if want is not None:
            assert out.stdout.splitlines() == want, sql


def test_allow_dir_opens_that_folder_to_reading_only(wh, tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    (mine / "names.csv").write_text("agency_id,short\n330212-jtj,鄞州交通\n")
    (other / "names.csv").write_text("agency_id,short\n330212-jtj,x\n")
    join = ("SELECT DISTINCT f.agency_id, n.short FROM facts f JOIN read_csv('{csv}') n USING (agency_id)")
    out = query(wh, join.format(csv=mine / "names.csv"), "--allow-dir", str(mine), "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["agency_id,short", "330212-jtj,鄞州交通"]
    refused(query(wh, join.format(csv=mine / "names.csv")), "Permission Error")  # not named: not read
    refused(query(wh, join.format(csv=other / "names.csv"), "--allow-dir", str(mine)), "Permission Error")
    refused(query(wh, f"COPY (SELECT 1) TO '{mine / 'out.csv'}'", "--allow-dir", str(mine)), "read-only")
    assert sorted(p.name for p in mine.iterdir()) == ["names.csv"]

"""The database carries its dictionary: a `metrics` table from data/dictionary.csv, and a comment on every
table, view and column (data/columns.csv, data/schema.py), on a real warehouse built as the pipeline builds it."""

from pathlib import Path

import pytest

from govreports.extract.fetchlog import FetchLog
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect, described
from govreports.transform.dictionary import entries, read_csv
from tests.loadhelp import bundle

MAIN = "database_name = current_database() AND schema_name = 'main'"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("comments")
    lake = Lake(str(root / "parquet"))
    lake.write([bundle("330212-jtj", "鄞州区交通运输局", 2021, "2021", 10, 1, review=(1, 0, 0, 0, 1) * 3)])
    FetchLog(root / "fetch_log").append([{"url": "http://127.0.0.1/a", "outcome": "failed", "kind": "report"}])
    return build(lake, root / "govreports.duckdb", fetch_log_glob=str(root / "fetch_log" / "*.parquet"))


def test_every_table_view_and_column_has_a_comment(db):
    with connect(db) as con:  # the file after the build's swap, opened as an analyst opens it
        rows = con.execute(f"SELECT table_name, '', comment FROM duckdb_tables() WHERE {MAIN} UNION ALL "
                           f"SELECT view_name, '', comment FROM duckdb_views() WHERE {MAIN} AND NOT internal "
                           f"UNION ALL SELECT table_name, column_name, comment FROM duckdb_columns() WHERE {MAIN}"
                           ).fetchall()
    missing = sorted((obj, col) for obj, col, comment in rows if not (comment or "").strip())
    # The pairs to add to data/columns.csv (column "" = the table or view itself).
    print("missing comments (object, column):", *missing, sep="\n  ")
    assert {"metrics", "fetch_log", "reports_stored", "requests"} <= {obj for obj, _, _ in rows}
    assert not missing


def test_a_comment_says_what_the_data_files_say(db):
    said = {(r["object"], r["column"]): r["description"] for r in read_csv("columns.csv")}
    with connect(db) as con:
        comment = dict(((t, c), m) for t, c, m in con.execute(
            f"SELECT table_name, column_name, comment FROM duckdb_columns() WHERE {MAIN}").fetchall())
        view = dict(con.execute(f"SELECT view_name, comment FROM duckdb_views() WHERE {MAIN}").fetchall())
        assert described(con)["requests", "received"] == comment["requests", "received"]
    assert comment["requests", "received"] == said["requests", "received"]
    assert comment["facts", "value"] == "a number or null, never a string"  # data/schema.py's, not repeated
    assert comment["reports_all_versions", "is_current"].startswith("the version of this agency's report")
    assert comment["licensing_trend", "decline_rank"] == said["decisions_trend", "decline_rank"]
    assert view["licensing_trend"] == said["licensing_trend", ""]


def test_every_column_described_in_columns_csv_exists(db):
    # A row naming a column the build no longer creates is a stale description.
    with connect(db) as con:
        known = set(described(con))
    stale = [(r["object"], r["column"]) for r in read_csv("columns.csv")
             if (r["object"], r["column"]) not in known]
    assert not stale, stale


def test_metrics_holds_every_dictionary_row(db):
    with connect(db) as con:
        rows = con.execute("SELECT metric, coalesce(applicant, ''), row_label_2019, column_label_2019, "
                           "row_label_2021, column_label_2021, unit, series, templates FROM metrics").fetchall()
    by_key = {(r[0], r[1]): r for r in rows}
    assert len(by_key) == len(rows)  # one row per quantity a fact can be
    cells = 0
    for e in entries():
        row = by_key[e.metric, e.applicant]
        for t in e.templates:
            cells += 1
            labels = row[2:4] if t == "2019" else row[4:6]
            assert labels == (e.row_label, e.column_label), (e, t)
            assert t in row[8].split("|")
        assert row[6] == e.unit and row[7] == e.continues
    assert cells == sum(len(r[8].split("|")) for r in rows)  # and nothing else


def test_metrics_spell_the_template_change(db):
    with connect(db) as con:
        rows = dict(con.execute("SELECT metric, description FROM metrics WHERE applicant IS NULL").fetchall())
    assert rows["licensing_decisions"] == ("二 第二十条第（五）项: 2019 行政许可 / 处理决定数量, 2021 行政许可 / "
                                           "本年处理决定数量; one series across the template change")

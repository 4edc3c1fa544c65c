"""The DuckDB warehouse on real files: views, numbers across the template change, README queries,
and an analyst reading in another process while loads run."""

import multiprocessing as mp
import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from govreports.flows import steps
from govreports.load import rollup
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from tests.loadhelp import bundle

ROOT = Path(__file__).resolve().parent.parent
CITY = "浙江省/宁波市"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("wh")
    lake = Lake(str(root / "parquet"))
    series = {  # licensing decisions 2019-2022: falling in 鄞州, rising in 海曙; 2019-2020 on the 2019 template
        ("330212-jtj", "鄞州区交通运输局", "鄞州区"): [23285, 16363, 12000, 9000],
        ("330203-jtj", "海曙区交通运输局", "海曙区"): [1000, 1100, 1500, 1800],
        ("330205-jtj", "江北区交通运输局", "江北区"): [500, 480, 470, None],
    }
    bundles = []
    for (agency_id, name, district), values in series.items():
        for year, value in zip(range(2019, 2023), values, strict=True):
            if value is None:
                continue
            # 江北 2020 carries forward 2 it never received: identity 1 fails, as on real pages.
            forward = 2 if (agency_id, year) == ("330205-jtj", 2020) else 1
            bundles.append(bundle(agency_id, name, year, "2019" if year <= 2020 else "2021", value, value // 10,
                                  region=f"{CITY}/{district}", requests_new=year - 2015, carried_forward=forward))
    lake.write(bundles)
    db = build(lake, root / "govreports.duckdb")
    return db


def q(db, sql, params=None):
    with connect(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_licensing_series_crosses_the_template_change(warehouse):
    rows = q(warehouse, "SELECT year, template, decisions, prev_decisions, change FROM licensing_trend "
                        "WHERE agency_id = '330212-jtj' ORDER BY year")
    assert rows == [(2019, "2019", 23285.0, None, None), (2020, "2019", 16363.0, 23285.0, -6922.0),
                    (2021, "2021", 12000.0, 16363.0, -4363.0), (2022, "2021", 9000.0, 12000.0, -3000.0)]


def test_decline_rank_within_the_city_and_year(warehouse):
    rows = q(warehouse, "SELECT agency, decline_rank, pct_change FROM licensing_trend WHERE year = 2021 "
                        "ORDER BY decline_rank")
    assert rows[0][:2] == ("鄞州区交通运输局", 1)
    assert rows[-1][:2] == ("海曙区交通运输局", 3)
    assert rows[-1][2] == pytest.approx(36.36, abs=0.01)


def test_enforcement_requests_review_rollup_and_quality(warehouse):
    assert q(warehouse, "SELECT decisions FROM enforcement_trend WHERE agency_id = '330203-jtj' AND year = 2022 "
                        "AND metric = 'penalty_decisions'") == [(180.0,)]
    assert q(warehouse, "SELECT received, carried_over, disclosed, handled_total, carried_forward FROM requests "
                        "WHERE agency_id = '330205-jtj' AND year = 2021 AND applicant = '总计'") == [
        (6.0, 1.0, 6.0, 6.0, 1.0)]
    assert q(warehouse, "SELECT count(*) FROM review_litigation") == [(0,)]  # the small pages print no 四
    assert q(warehouse, "SELECT units, total FROM region_rollup WHERE region = ? AND year = 2020 "
                        "AND metric = 'licensing_decisions'", [f"{CITY}/鄞州区"]) == [(1, 16363.0)]
    # The small pages balance identity 1 but print too few outcome rows to assess identity 2.
    rows = q(warehouse, "SELECT failed_rules, checks_not_assessable > 0, missing_sections FROM data_quality "
                        "WHERE agency_id = '330212-jtj' AND year = 2019")
    assert rows == [(None, True, "四")]


def test_identity_failures_reach_checks_and_quality(warehouse):
    rows = q(warehouse, "SELECT agency, subject, expected, actual FROM checks WHERE rule = 1 AND status = 'fail' "
                        "ORDER BY subject")
    assert rows == [("江北区交通运输局", "总计", 6.0, 7.0), ("江北区交通运输局", "自然人", 6.0, 7.0)]
    assert q(warehouse, "SELECT failed_rules FROM data_quality WHERE agency_id = '330205-jtj' AND year = 2020") == [
        ("1",)]


def test_cross_year_checks(warehouse):
    rows = q(warehouse, "SELECT rule, subject, expected, actual, status FROM cross_year_checks "
                        "WHERE agency_id = '330212-jtj' AND year = 2020 AND subject = '总计'")
    assert rows == [(6, "总计", 1, 1, "pass")]
    rows = q(warehouse, "SELECT expected, actual, status FROM cross_year_checks WHERE agency_id = '330212-jtj' "
                        "AND year = 2020 AND rule = 8 AND subject = 'licensing'")
    assert rows == [(38.0, 40.0, "fail")]


def test_readme_analyst_queries_run(warehouse):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Analyst queries", 1)[1]
    queries = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    assert len(queries) >= 5
    for sql in queries:
        result = q(warehouse, sql)
        assert result, f"no rows from README query:\n{sql}"


def test_the_database_is_read_only_for_analysts(warehouse):
    with connect(warehouse) as con, pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE x (a INT)")


def _reader(db: str, stop, seen, errors) -> None:
    while not stop.is_set():
        try:
            with duckdb.connect(db, read_only=True) as con:
                n, total = con.execute("SELECT count(*), sum(value::DECIMAL(38, 4)) FROM facts").fetchone()
                seen.append((n, total))
        except Exception as exc:  # any error is what the test looks for
            errors.append(repr(exc))


def test_an_analyst_reads_while_loads_run(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    db = tmp_path / "govreports.duckdb"
    states = []
    lake.write([bundle("a0", "甲区民政局", 2021, "2021", 5, 1)])
    build(lake, db)
    with connect(db) as con:
        states.append(con.execute("SELECT count(*), sum(value::DECIMAL(38, 4)) FROM facts").fetchone())
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        stop, seen, errors = manager.Event(), manager.list(), manager.list()
        reader = ctx.Process(target=_reader, args=(str(db), stop, seen, errors))
        reader.start()
        for i in range(1, 8):
            lake.write([bundle(f"a{i}", f"{i}号区民政局", 2021, "2021", 5 + i, i)])
            build(lake, db)
            with connect(db) as con:
                states.append(con.execute("SELECT count(*), sum(value::DECIMAL(38, 4)) FROM facts").fetchone())
        stop.set()
        reader.join(60)
        observed, failures = list(seen), list(errors)
    assert failures == []
    assert observed, "the reader never got an answer"
    assert set(observed) <= set(states), "a reader saw a state that no completed load produced"


def test_a_build_in_chunks_equals_a_build_in_one(warehouse, tmp_path, monkeypatch):
    """The rebuild reads the lake a few thousand files per connection (memory); the tables must not
    depend on where the chunks fall."""
    from govreports.load import warehouse as wmod

    lake = Lake(str(Path(warehouse).parent / "parquet"))
    assert len(lake.files("reports")) > 3
    monkeypatch.setattr(wmod, "BUILD_CHUNK_FILES", 2)
    chunked = build(lake, tmp_path / "chunked.duckdb")
    for table in ("reports_all_versions", "facts_all_versions", "checks_all_versions", "licensing_trend"):
        whole = sorted(map(repr, q(warehouse, f"SELECT * FROM {table}")))
        assert whole and sorted(map(repr, q(chunked, f"SELECT * FROM {table}"))) == whole, table


def test_loaded_report_ids_come_from_a_database_built_from_this_lake(tmp_path):
    from govreports.load.warehouse import loaded_report_ids

    lake = Lake(str(tmp_path / "parquet"))
    first = bundle("a1", "甲区民政局", 2021, "2021", 5, 1)
    lake.write([first])
    db = build(lake, tmp_path / "govreports.duckdb")
    assert loaded_report_ids(db, lake) == {first.report["report_id"]}
    assert q(db, "SELECT lake FROM build_info") == [(lake.uri,)]
    assert loaded_report_ids(db, Lake(str(tmp_path / "another"))) is None  # built from another lake
    assert loaded_report_ids(tmp_path / "missing.duckdb", lake) is None
    with duckdb.connect(str(tmp_path / "old.duckdb")) as con:  # a database from before build_info
        con.execute("CREATE TABLE reports_all_versions (report_id VARCHAR)")
    assert loaded_report_ids(tmp_path / "old.duckdb", lake) is None


def test_not_loaded_trusts_the_database_only_as_far_as_it_was_built(tmp_path):
    """The flow passes the database only when nothing was loaded since its build (no .refresh-needed
    marker): a load after the build is invisible to it, which is why."""
    from govreports.flows.steps import PageRef, not_loaded

    lake = Lake(str(tmp_path / "parquet"))
    old, new = bundle("a1", "甲区民政局", 2021, "2021", 5, 1), bundle("a2", "乙区民政局", 2021, "2021", 6, 1)
    refs = [PageRef(b.report["agency_id"], b.report["url"], b.report["content_sha256"], 2021, None) for b in (old, new)]
    lake.write([old])
    db = build(lake, tmp_path / "govreports.duckdb")
    assert not_loaded(refs, lake, db=db) == not_loaded(refs, lake) == refs[1:]
    lake.write([new])  # loaded, database not rebuilt
    assert not_loaded(refs, lake) == []
    assert not_loaded(refs, lake, db=db) == refs[1:]


def test_region_rollup_counts_units_as_count_distinct_would(tmp_path):
    # Two units in one region, one of them with a revised report (two versions): the rollup counts rows
    # of current versions, which must come to the distinct units and their sums.
    lake = Lake(str(tmp_path / "parquet"))
    region = f"{CITY}/北仑区"
    lake.write([
        bundle("330206-jtj", "北仑区交通运输局", 2021, "2021", 40, 4, region=region, fetched_at="2022-01-20"),
        bundle("330206-jtj", "北仑区交通运输局", 2021, "2021", 45, 4, region=region, fetched_at="2022-03-01"),
        bundle("330206-mzj", "北仑区民政局", 2021, "2021", 7, 1, region=region),
        bundle("330206-mzj", "北仑区民政局", 2022, "2021", 9, 1, region=region),
    ])
    db = build(lake, tmp_path / "govreports.duckdb")
    by_distinct = """
        SELECT r.region, f.year, f.metric, coalesce(f.applicant, '') AS applicant,
               count(DISTINCT f.agency_id) FILTER (WHERE f.value IS NOT NULL),
               sum(f.value) FILTER (WHERE f.unit = 'count'), round(sum(f.value) FILTER (WHERE f.unit <> 'count'), 6)
        FROM facts f JOIN reports r USING (report_id) WHERE f.metric IS NOT NULL GROUP BY ALL"""
    # the units' own region (its ancestors: tests/test_regions.py); `units` comes from coverage
    rollup = ("SELECT region, year, metric, applicant, units_reporting, total, total_wan_yuan FROM region_rollup "
              f"WHERE region = '{region}'")
    assert q(db, f"SELECT count(*) FROM ({rollup})")[0][0] > 0
    assert q(db, f"({rollup}) EXCEPT ({by_distinct})") == []
    assert q(db, f"({by_distinct}) EXCEPT ({rollup})") == []
    assert q(db, "SELECT units, total FROM region_rollup WHERE year = 2021 AND metric = 'licensing_decisions' "
                 "AND region = ?", [region]) == [(2, 52)]


def _readme_tables() -> dict[str, str]:
    """README's *Tables and views*: name -> the row's column cell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Tables and views", 1)[1].split("\n### ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([a-z_]+)`", cells[0]):
                out[name] = cells[2]
    return out


def test_readme_lists_every_table_and_view_of_the_database(warehouse, tmp_path):
    # The database built with a fetch log, as the pipeline builds it.
    from govreports.extract.fetchlog import FetchLog

    log_dir = tmp_path / "fetch_log"
    FetchLog(log_dir).append([{"url": "http://127.0.0.1/a", "outcome": "failed", "kind": "report"}])
    db = build(Lake(str(Path(warehouse).parent / "parquet")), tmp_path / "db.duckdb",
               fetch_log_glob=str(log_dir / "*.parquet"))
    names = {n for (n,) in q(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")}
    documented = _readme_tables()
    assert names == set(documented)
    # Where a row spells its columns out as one backticked list, they are the view's columns, in order.
    for name in ("reports", "fetch_log", "request_outcomes", "review_litigation", "region_rollup",
                 "cross_year_checks"):
        listed = re.search(r"`([^`]+)`", documented[name]).group(1)
        columns = [c for (c,) in q(db, "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                       "ORDER BY ordinal_position", [name])]
        spelled = [c.split(" (")[0].strip() for c in re.sub(r"\([^)]*\)", "", listed).split(",")]
        assert spelled == columns, name


def test_cross_year_rule_7_rules_in_force(tmp_path):
    # 7: 现行有效件数(t) = 现行有效件数(t-1) + 本年制发件数(t) − 本年废止件数(t), for 规章.
    lake = Lake(str(tmp_path / "parquet"))
    region = f"{CITY}/北仑区"
    lake.write([
        bundle("330206-sfj", "北仑区司法局", 2021, "2021", 5, 1, region=region, regulations=(2, 0, 10)),
        bundle("330206-sfj", "北仑区司法局", 2022, "2021", 5, 1, region=region, regulations=(3, 1, 12)),  # 10+3-1
        bundle("330206-sfj", "北仑区司法局", 2023, "2021", 5, 1, region=region, regulations=(4, 0, 15)),  # not 16
    ])
    db = build(lake, tmp_path / "govreports.duckdb")
    rows = q(db, "SELECT year, subject, expected, actual, status FROM cross_year_checks WHERE rule = 7 "
                 "ORDER BY year")
    assert rows == [(2022, "regulations", 12.0, 12.0, "pass"), (2023, "regulations", 16.0, 15.0, "fail")]


def test_review_litigation_pivots_the_three_groups(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    review = (2, 1, 0, 1, 4, 1, 0, 0, 0, 1, 0, 1, 1, 0, 2)
    lake.write([bundle("330206-sfj", "北仑区司法局", 2022, "2021", 5, 1, region=f"{CITY}/北仑区", review=review)])
    db = build(lake, tmp_path / "govreports.duckdb")
    rows = q(db, "SELECT group_code, \"group\", upheld, corrected, other, pending, total FROM review_litigation "
                 "ORDER BY group_code")
    assert rows == [("review", "行政复议", 2.0, 1.0, 0.0, 1.0, 4.0),
                    ("suit_after_review", "复议后起诉", 0.0, 1.0, 1.0, 0.0, 2.0),
                    ("suit_direct", "未经复议直接起诉", 1.0, 0.0, 0.0, 0.0, 1.0)]


# Counts are BIGINT, money and ratios DOUBLE (README, "The warehouse"); decline_rank is a rank.
_TYPES = {
    "facts": {"value": "DOUBLE", "table_index": "BIGINT", "year": "BIGINT"},  # year: as declared, from the path
    "reports": dict.fromkeys(["n_values", "n_unparsed", "n_checks_failed", "n_checks_not_assessable"], "BIGINT"),
    "checks": {"rule": "BIGINT", "expected": "BIGINT", "actual": "BIGINT"},
    **{view: {"decisions": "BIGINT", "prev_decisions": "BIGINT", "change": "BIGINT", "pct_change": "DOUBLE",
              "decline_rank": "BIGINT"} for view in ("decisions_trend", "licensing_trend", "enforcement_trend")},
    "requests": dict.fromkeys(["received", "carried_over", "disclosed", "partially_disclosed", "withheld",
                               "unavailable", "not_processed", "other_handling", "handled_total",
                               "carried_forward"], "BIGINT"),
    "request_outcomes": {"value": "BIGINT"},
    "review_litigation": dict.fromkeys(["upheld", "corrected", "other", "pending", "total"], "BIGINT"),
    "region_rollup": {"units": "BIGINT", "units_reporting": "BIGINT", "total": "BIGINT",
                      "total_wan_yuan": "DOUBLE"},
    "data_quality": dict.fromkeys(["n_values", "n_unparsed", "checks_failed", "checks_not_assessable"], "BIGINT"),
    "cross_year_checks": {"rule": "BIGINT", "expected": "BIGINT", "actual": "BIGINT"},
}


def _describe(db, name: str) -> dict[str, str]:
    return {row[0]: row[1] for row in q(db, f"DESCRIBE {name}")}


@pytest.mark.parametrize("name", sorted(_TYPES))
def test_counts_are_bigint_and_money_double(warehouse, name):
    types = _describe(warehouse, name)
    assert {c: types[c] for c in _TYPES[name]} == _TYPES[name]


def test_the_lake_has_the_columns_of_the_tables(warehouse):
    # agency_id (the ASCII id) and agency (the name) mean one thing in the lake and the tables.
    lake = Lake(str(Path(warehouse).parent / "parquet"))
    for dataset in ("facts", "reports", "checks"):
        assert set(lake.read(dataset).columns) == set(_describe(warehouse, f"{dataset}_all_versions")) - {"is_current"}
    assert q(warehouse, "SELECT DISTINCT agency_id, agency FROM checks_all_versions ORDER BY 1") == q(
        warehouse, "SELECT DISTINCT agency_id, agency FROM facts_all_versions ORDER BY 1") == [
        ("330203-jtj", "海曙区交通运输局"), ("330205-jtj", "江北区交通运输局"), ("330212-jtj", "鄞州区交通运输局")]


def test_a_count_is_an_integer_a_double_holds_exactly_else_null(warehouse, tmp_path):
    assert q(warehouse, "SELECT as_count(16363.0), as_count(-3.0), as_count(2.5), as_count(1e20), "
                        "as_count(NULL)") == [(16363, -3, None, None, None)]
    # A count printed with a fraction keeps its number in facts and is no count in the views.
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("330206-sfj", "北仑区司法局", 2022, "2021", "2.5", 1, region=f"{CITY}/北仑区")])
    db = build(lake, tmp_path / "govreports.duckdb")
    assert q(db, "SELECT value FROM facts WHERE metric = 'licensing_decisions'") == [(2.5,)]
    assert q(db, "SELECT decisions FROM licensing_trend") == [(None,)]


def test_a_lake_file_changed_outside_the_pipeline_is_reported_and_not_loaded(tmp_path, caplog):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    lake.write([bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])
    forged = Lake(str(tmp_path / "forged"))
    forged.write([bundle("a1", "甲区民政局", 2022, "2021", 99999, 2)])
    first = next(f for f in lake.files("facts")
                 if "a1" in pq.read_table(f, partitioning=None).column("agency_id").to_pylist())
    (forged_file,) = forged.files("facts")
    Path(first).write_bytes(Path(forged_file).read_bytes())  # other valid Parquet
    db = build(lake, tmp_path / "govreports.duckdb")
    assert "changed outside the pipeline" in caplog.text and first in caplog.text
    assert q(db, "SELECT dataset, year, path FROM lake_tampered") == [("facts", 2022, first)]
    # Neither the forged rows nor the rest of that load: no report without its facts.
    assert q(db, "SELECT count(*) FROM facts_all_versions WHERE value = 99999") == [(0,)]
    assert q(db, "SELECT DISTINCT agency_id FROM reports_all_versions UNION SELECT DISTINCT agency_id FROM facts "
                 "UNION SELECT DISTINCT agency_id FROM checks_all_versions") == [("a2",)]


def test_the_current_version_is_the_last_seen_of_those_that_parsed(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    a = bundle("a1", "甲区民政局", 2022, "2021", 10, 2, fetched_at="2024-01-01")
    b = bundle("a1", "甲区民政局", 2022, "2021", 11, 2, fetched_at="2024-01-02")
    bad = steps.parse_page(b"<html><body>gone</body></html>", steps.PageRef(
        "a1", a.report["url"], "f" * 64, 2022, pd.Timestamp("2024-01-03", tz="UTC")), None, pd.Timestamp.now(tz="UTC"))
    assert bad.report["status"] == "failed"
    lake.write([a, b, bad])
    rid = {v.report["report_id"]: name for name, v in {"a": a, "b": b, "bad": bad}.items()}

    def current(seen: dict[str, str] | None) -> list[tuple]:
        versions = None if seen is None else pd.DataFrame(
            [{"url": v.report["url"], "sha256": v.report["content_sha256"], "last_seen": pd.Timestamp(seen[name])}
             for name, v in {"a": a, "b": b, "bad": bad}.items()])
        db = build(lake, tmp_path / "govreports.duckdb", versions=versions)
        flags = {rid[r]: c for r, c in q(db, "SELECT report_id, is_current FROM reports_all_versions")}
        return sorted(name for name, flag in flags.items() if flag)

    assert current(None) == ["b"]  # no fetch log: when first fetched; the failed version never displaces
    # A -> B -> A: A was seen last; the failed version, seen after it, does not count.
    assert current({"a": "2024-01-05T00:00Z", "b": "2024-01-04T00:00Z", "bad": "2024-01-06T00:00Z"}) == ["a"]
    assert current({"a": "2024-01-01T00:00Z", "b": "2024-01-04T00:00Z", "bad": "2024-01-09T00:00Z"}) == ["b"]


# -- refresh in proportion to the change (issue 17) ---------------------------------------------------------

_EVERY_TABLE = ("reports_all_versions", "facts_all_versions", "checks_all_versions", "coverage", "region_rollup",
                "report_versions_seen", "licensing_trend", "decision_facts_all_versions", "decisions_trend",
                "data_quality", "metrics")


def _contents(db: Path) -> dict[str, list[str]]:
    return {t: sorted(map(repr, q(db, f"SELECT * EXCLUDE (loaded_at) FROM {t}" if t.startswith("reports")
                                  else f"SELECT * FROM {t}"))) for t in _EVERY_TABLE}


def test_a_refresh_after_a_load_reads_only_that_loads_files(tmp_path):
    """The database built, one report loaded: the refresh reads the new commit's files only. Every other data
    file is overwritten with garbage first, which any read of it would fail on or report as tampered."""
    lake = Lake(str(tmp_path / "parquet"))
    for i in range(4):  # four loads, as four nights
        lake.write([bundle(f"a{i}", f"{i}号区民政局", 2021 + i % 2, "2021", 10 + i, 2, region=f"{CITY}/{i}区")])
    db = build(lake, tmp_path / "govreports.duckdb")
    before = q(db, "SELECT versions FROM build_info")
    others = [Path(f) for files in lake.snapshot().files.values() for f in files]
    lake.write([bundle("new", "新区民政局", 2022, "2021", 99, 2, region=f"{CITY}/新区")])
    for f in others:
        f.write_bytes(b"not parquet at all")
    build(lake, db)
    assert q(db, "SELECT count(*) FROM lake_tampered") == [(0,)]  # the garbage was never read
    assert q(db, "SELECT agency_id FROM reports ORDER BY 1") == [("a0",), ("a1",), ("a2",), ("a3",), ("new",)]
    assert q(db, "SELECT decisions FROM licensing_trend WHERE agency_id = 'new'") == [(99,)]
    assert q(db, "SELECT versions FROM build_info") != before


def test_a_refreshed_database_equals_one_built_whole(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a1", "甲区民政局", 2021, "2021", 10, 2, region=f"{CITY}/甲区"),
                bundle("a2", "乙区民政局", 2021, "2021", 20, 2, region=f"{CITY}/乙区")])
    db = build(lake, tmp_path / "govreports.duckdb")
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 8, 2, region=f"{CITY}/甲区")])
    # A new version of a2's 2021 report: it becomes current, the old one stays beside it.
    lake.write([bundle("a2", "乙区民政局", 2021, "2021", 25, 2, region=f"{CITY}/乙区", fetched_at="2024-02-01")])
    build(lake, db)
    whole = build(lake, tmp_path / "whole.duckdb", full=True)
    assert _contents(db) == _contents(whole)
    assert q(db, "SELECT agency_id, year, decisions FROM licensing_trend ORDER BY 1, 2") == [
        ("a1", 2021, 10), ("a1", 2022, 8), ("a2", 2021, 25)]


def test_a_refresh_of_a_database_built_before_the_decision_subset_makes_it_whole(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a1", "甲区民政局", 2021, "2021", 10, 2, region=f"{CITY}/甲区")])
    db = build(lake, tmp_path / "govreports.duckdb")
    with duckdb.connect(str(db)) as con:  # as an older version built it
        con.execute("DROP VIEW licensing_trend; DROP VIEW enforcement_trend; DROP VIEW decisions_trend; "
                    "DROP TABLE decision_facts_all_versions")
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 8, 2, region=f"{CITY}/甲区")])
    build(lake, db)
    whole = build(lake, tmp_path / "whole.duckdb", full=True)
    assert _contents(db) == _contents(whole)
    assert q(db, "SELECT year, decisions, prev_decisions FROM licensing_trend ORDER BY 1") == [
        (2021, 10, None), (2022, 8, 10)]


def test_a_reload_or_a_database_of_another_lake_is_built_whole(tmp_path, caplog):
    lake = Lake(str(tmp_path / "parquet"))
    b = bundle("a1", "甲区民政局", 2021, "2021", 10, 2)
    lake.write([b])
    db = build(lake, tmp_path / "govreports.duckdb")
    lake.write([b])  # a reload removes rows: no increment to add
    assert lake.changes(json_versions(db), lake.snapshot()) is None
    build(lake, db)
    assert q(db, "SELECT count(*) FROM reports_all_versions") == [(1,)]
    other = Lake(str(tmp_path / "other"))
    other.write([bundle("z9", "丙区民政局", 2021, "2021", 5, 2)])
    build(other, db)  # built from another lake: its versions say nothing of this one
    assert q(db, "SELECT agency_id FROM reports") == [("z9",)]


def json_versions(db: Path) -> dict[str, int]:
    import json

    return json.loads(q(db, "SELECT versions FROM build_info")[0][0])


def test_a_refresh_adds_the_sightings_logged_since_and_reads_no_earlier_attempt(tmp_path, caplog):
    """A page went A -> B -> A: the refresh that follows reads only the attempts after the last build, and
    decides the current version as a build from the whole log does. An attempt logged since then but dated
    before it (a clock set back) makes it read every attempt again."""
    from datetime import UTC, datetime, timedelta

    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(tmp_path / "fetch_log")
    reads: list[object] = []

    def sightings(after):  # the log's own reader, its argument noted
        reads.append(after)
        return log.sightings(after)

    def seen(b, day: int, outcome: str = "new_version") -> dict:
        r = b.report
        return {"url": r["url"], "sha256": r["content_sha256"], "agency_id": r["agency_id"], "kind": "report",
                "outcome": outcome, "year": 2021, "fetched_at": datetime(2024, 2, day, tzinfo=UTC)}

    a = bundle("a1", "甲区民政局", 2021, "2021", 10, 2, region=f"{CITY}/甲区", fetched_at="2024-02-01")
    b = bundle("a1", "甲区民政局", 2021, "2021", 30, 2, region=f"{CITY}/甲区", fetched_at="2024-02-02")
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([a, b])
    log.append([seen(a, 1, "new")])
    log.append([seen(b, 2)])
    db = build(lake, tmp_path / "govreports.duckdb", sightings=sightings)
    assert reads == [None] and q(db, "SELECT decisions FROM licensing_trend") == [(30,)]
    log.append([seen(a, 3)])  # back at A
    lake.write([bundle("a2", "乙区民政局", 2021, "2021", 5, 2, region=f"{CITY}/乙区")])  # a load: a refresh
    build(lake, db, sightings=sightings)
    assert reads[1] == datetime(2024, 2, 2, tzinfo=UTC)  # only what came after the first build
    assert q(db, "SELECT agency_id, decisions FROM licensing_trend ORDER BY 1") == [("a1", 10), ("a2", 5)]
    whole = build(lake, tmp_path / "whole.duckdb", full=True, sightings=log.sightings)
    assert _contents(db) == _contents(whole)
    assert q(db, "SELECT count(*) FROM report_versions_seen") == [(2,)]

    log.append([seen(b, 2) | {"fetched_at": datetime(2024, 2, 3, tzinfo=UTC) - timedelta(hours=1)}])  # back-dated
    lake.write([bundle("a3", "丙区民政局", 2021, "2021", 7, 2, region=f"{CITY}/丙区")])
    build(lake, db, sightings=sightings)
    assert reads[2:] == [datetime(2024, 2, 3, tzinfo=UTC), None] and "clock set back" in caplog.text
    assert _contents(db) == _contents(build(lake, tmp_path / "whole2.duckdb", full=True, sightings=log.sightings))


_ROLLUP = "SELECT * FROM region_rollup"


def _registry(*units: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"agency_id": a, "agency": n, "region": r, "level": "county", "kind": "department"} for a, n, r in units]


@pytest.mark.parametrize("chunk", [rollup.CHUNK_REPORTS, 1])
def test_region_rollup_refreshed_night_by_night_equals_one_summed_whole(tmp_path, monkeypatch, chunk):
    """Nights that add a report, revise one, move a unit to another region, and list a unit the lake does
    not hold: after each, the refreshed region_rollup is row for row the one a full build sums from every fact.
    With chunks of one report, each prefix is summed on its own (as a large build's are, many at a time)."""
    monkeypatch.setattr(rollup, "CHUNK_REPORTS", chunk)
    lake = Lake(str(tmp_path / "parquet"))
    units = [("a1", "甲区民政局", f"{CITY}/甲区"), ("a2", "乙区民政局", f"{CITY}/乙区"),
             ("c1", "宁波市民政局", CITY), ("p1", "杭州市民政局", "浙江省/杭州市")]
    lake.write([bundle(a, n, 2021, "2021", 10 + i, 2, region=r) for i, (a, n, r) in enumerate(units)])
    db = build(lake, tmp_path / "govreports.duckdb", sources=_registry(*units))
    nights = [
        ([bundle("a1", "甲区民政局", 2022, "2021", 8, 2, region=f"{CITY}/甲区")], units),
        ([bundle("a2", "乙区民政局", 2021, "2021", 25, 2, region=f"{CITY}/乙区", fetched_at="2024-02-01")], units),
        ([bundle("a2", "乙区民政局", 2021, "2021", 30, 2, region="浙江省/杭州市/丙区", fetched_at="2024-03-01")],
         units),
        ([], [*units, ("x1", "丁区民政局", "浙江省/杭州市/丁区"),  # listed, no reports yet
              ("x2", "戊区民政局", "浙江省/杭州市/戊区")]),
    ]
    for night, (bundles, registry) in enumerate(nights):
        if bundles:
            lake.write(bundles)
        build(lake, db, sources=_registry(*registry))
        whole = build(lake, tmp_path / f"whole{night}.duckdb", sources=_registry(*registry), full=True)
        assert sorted(q(db, _ROLLUP)) == sorted(q(whole, _ROLLUP)), night
    # the moved unit's 2021 decisions left 乙区 and 宁波市 for 杭州市; the province kept them
    assert q(db, "SELECT region, total FROM region_rollup WHERE year = 2021 AND metric = 'licensing_decisions' "
                 "ORDER BY 1") == [("浙江省", 10 + 30 + 12 + 13), ("浙江省/宁波市", 10 + 12),
                                   ("浙江省/宁波市/甲区", 10), ("浙江省/杭州市", 30 + 13), ("浙江省/杭州市/丙区", 30)]
    assert q(db, "SELECT units FROM region_rollup WHERE region = '浙江省/杭州市' AND year = 2021 "
                 "AND metric = 'licensing_decisions'") == [(3,)]  # listed: p1, x1, x2 (a2's registry region is 乙区)


def test_a_refresh_sums_again_only_the_regions_whose_reports_changed(tmp_path):
    """A sum of another province, altered in the database's kept state, stays as it was through a night that
    loads a report of this one (it was not summed again), and is put right by a night that loads one there."""
    lake = Lake(str(tmp_path / "parquet"))
    lake.write([bundle("a1", "甲区民政局", 2021, "2021", 10, 2, region=f"{CITY}/甲区"),
                bundle("b1", "乙县民政局", 2021, "2021", 7, 2, region="安徽省/合肥市/乙县")])
    db = build(lake, tmp_path / "govreports.duckdb")
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE rollup_state.region_sums SET total = 1000 "
                    "WHERE region = '安徽省' AND metric = 'licensing_decisions'")
        con.execute("UPDATE region_rollup SET total = 1000 WHERE region = '安徽省' AND metric = 'licensing_decisions'")
    decisions = "SELECT total FROM region_rollup WHERE region = ? AND year = 2021 AND metric = 'licensing_decisions'"
    lake.write([bundle("a2", "乙区民政局", 2021, "2021", 5, 2, region=f"{CITY}/乙区")])
    build(lake, db)
    assert q(db, decisions, ["浙江省"]) == [(15,)]
    assert q(db, decisions, ["安徽省"]) == [(1000,)]
    lake.write([bundle("b2", "丙县民政局", 2021, "2021", 1, 2, region="安徽省/合肥市/丙县")])
    build(lake, db)
    assert q(db, decisions, ["安徽省"]) == [(8,)]

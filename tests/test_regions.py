"""--region means one thing everywhere (extract.sources.region_matches: fetch, compare), and `region_rollup`
sums every unit into each of its ancestor regions, on a real warehouse and through the CLI."""

import subprocess
from pathlib import Path

import pytest

from govreports.extract.sources import region_matches
from govreports.load import compare as comparison
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from tests import CLI
from tests.loadhelp import bundle

ROOT = Path(__file__).resolve().parent.parent
YINZHOU, HAISHU, NINGBO = "浙江省/宁波市/鄞州区", "浙江省/宁波市/海曙区", "浙江省/宁波市"
PATHS = (YINZHOU, HAISHU, NINGBO, "浙江省/杭州市", "江苏省/宿迁市/沭阳县", "辽宁省/铁岭市/昌图县/七家子镇")

# region asked -> the paths of PATHS it selects: the rule, as a table both implementations run over.
CASES = {
    "浙江省/宁波市": {YINZHOU, HAISHU, NINGBO},
    "浙江省/宁波市/": {YINZHOU, HAISHU, NINGBO},
    " 宁波市 ": {YINZHOU, HAISHU, NINGBO},
    "宁波市": {YINZHOU, HAISHU, NINGBO},  # one part, exactly
    "鄞州区": {YINZHOU},
    "浙江": {YINZHOU, HAISHU, NINGBO, "浙江省/杭州市"},  # a prefix of the path
    "七家子镇": {"辽宁省/铁岭市/昌图县/七家子镇"},
    "鄞州": set(),  # neither a prefix nor a whole part
    "宁波": set(),
    "x' OR '1'='1": set(),
}


def test_the_matcher_table():
    for region, expected in CASES.items():
        assert {p for p in PATHS if region_matches(p, region)} == expected, region
    assert not region_matches(YINZHOU, "  ")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Ningbo: 鄞州区 and 海曙区 report 2019-2020; the city government reports 2019 only; 杭州 is in the registry
    but never reported: a sum over 浙江省 is over an incomplete set, and says so. 鄞州区 revised its 2020 report:
    only the current version counts."""
    root = tmp_path_factory.mktemp("regions")
    lake = Lake(str(root / "parquet"))
    lake.write([
        bundle("330212-jtj", "鄞州区交通运输局", 2019, "2019", 100, 5, region=YINZHOU),
        bundle("330212-jtj", "鄞州区交通运输局", 2020, "2019", 80, 5, region=YINZHOU, fetched_at="2021-01-20"),
        bundle("330212-jtj", "鄞州区交通运输局", 2020, "2019", 85, 5, region=YINZHOU, fetched_at="2021-03-01"),
        bundle("330203-jtj", "海曙区交通运输局", 2019, "2019", 10, 5, region=HAISHU),
        bundle("330203-jtj", "海曙区交通运输局", 2020, "2019", 30, 5, region=HAISHU),
        bundle("330200-zf", "宁波市人民政府", 2019, "2019", 1, 5, region=NINGBO),
        bundle("320322-fgj", "沭阳县发展和改革局", 2019, "2019", 7, 5, region="江苏省/宿迁市/沭阳县"),
    ])
    registry = [
        {"agency_id": "330212-jtj", "agency": "鄞州区交通运输局", "region": YINZHOU, "level": "county",
         "kind": "department"},
        {"agency_id": "330203-jtj", "agency": "海曙区交通运输局", "region": HAISHU, "level": "county",
         "kind": "department"},
        {"agency_id": "330200-zf", "agency": "宁波市人民政府", "region": NINGBO, "level": "city", "kind": "government"},
        {"agency_id": "330100-zf", "agency": "杭州市人民政府", "region": "浙江省/杭州市", "level": "city",
         "kind": "government"},
        {"agency_id": "320322-fgj", "agency": "沭阳县发展和改革局", "region": "江苏省/宿迁市/沭阳县", "level": "county",
         "kind": "department"},
    ]
    return build(lake, root / "g.duckdb", sources=registry)


def test_compare_selects_what_the_matcher_does(db):
    with connect(db) as con:
        paths = set(con.execute("SELECT region FROM coverage").df()["region"])
        for region, expected in CASES.items():
            wanted = {p for p in paths if region_matches(p, region)}
            assert set(comparison.regions(con, region)) == wanted == expected & paths, region
            if not wanted:
                with pytest.raises(comparison.NoMatch, match="no agency in region"):
                    comparison.compare(con, "licensing", region=region)
                assert comparison.missing(con, region).empty
                continue
            rows = set(con.execute("SELECT region FROM coverage WHERE true " + comparison._where(con, region, None)[0],
                                   comparison._where(con, region, None)[1]).df()["region"])
            assert rows == wanted, region
        wide, _ = comparison.compare(con, "licensing", region="宁波市")
        assert list(wide["agency"]) == ["鄞州区交通运输局", "宁波市人民政府", "海曙区交通运输局"]
        with pytest.raises(comparison.NoMatch, match="no licensing values in region '宁波市' in 2023-2024"):
            comparison.compare(con, "licensing", region="宁波市", years=(2023, 2024))


def _rollup(con, region: str, year: int) -> tuple:
    return con.execute("SELECT units, units_reporting, total FROM region_rollup WHERE region = ? AND year = ? "
                       "AND metric = 'licensing_decisions'", [region, year]).fetchone()


def test_rollup_sums_every_ancestor_region(db):
    with connect(db) as con:
        assert _rollup(con, YINZHOU, 2019) == (1, 1, 100)
        assert _rollup(con, YINZHOU, 2020) == (1, 1, 85)  # the revised version, not both
        assert _rollup(con, NINGBO, 2019) == (3, 3, 111)  # the city government and its two districts
        assert _rollup(con, NINGBO, 2020) == (3, 2, 115)  # the city's 2020 report is missing: visible
        assert _rollup(con, "浙江省", 2019) == (4, 3, 111)  # 杭州 is listed but never reported
        assert _rollup(con, "江苏省", 2019) == (1, 1, 7)
        # one row per region, year, metric and applicant; none per unit
        assert con.execute("SELECT count(*) FROM (SELECT region, year, metric, applicant FROM region_rollup "
                           "GROUP BY ALL HAVING count(*) > 1)").fetchone() == (0,)
        regions = {r for (r,) in con.execute("SELECT DISTINCT region FROM region_rollup").fetchall()}
        assert regions == {"浙江省", NINGBO, YINZHOU, HAISHU, "江苏省", "江苏省/宿迁市", "江苏省/宿迁市/沭阳县"}
        # each region's sum is the sum over the units whose path it prefixes (count(DISTINCT) as the referee)
        by_distinct = """
            SELECT g.region, f.year, f.metric, coalesce(f.applicant, '') AS applicant,
                   count(DISTINCT f.agency_id) FILTER (WHERE f.value IS NOT NULL),
                   sum(f.value) FILTER (WHERE f.unit = 'count'), round(sum(f.value) FILTER (WHERE f.unit <> 'count'), 6)
            FROM facts f JOIN reports r USING (report_id)
            JOIN (SELECT DISTINCT region FROM region_rollup) g
              ON r.region = g.region OR starts_with(r.region, g.region || '/')
            WHERE f.metric IS NOT NULL GROUP BY ALL"""
        rollup = "SELECT region, year, metric, applicant, units_reporting, total, total_wan_yuan FROM region_rollup"
        assert con.execute(f"({rollup}) EXCEPT ({by_distinct})").fetchall() == []
        assert con.execute(f"({by_distinct}) EXCEPT ({rollup})").fetchall() == []


def run(*args):
    return subprocess.run([*CLI, *args], capture_output=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("region", ["宁波市", "鄞州区", "浙江"])
def test_compare_cli_matches_as_fetch_does(db, region):
    out = run("--db", str(db), "compare", "licensing", "--region", region)
    assert out.returncode == 0, out.stderr.decode()
    assert "鄞州区交通运输局" in out.stdout.decode() and "沭阳县" not in out.stdout.decode()


@pytest.mark.parametrize(("args", "message"), [
    (("--region", "宁波"), "govreports compare: no agency in region '宁波'"),
    (("--region", "宁波市", "--years", "2030"),
     "govreports compare: no licensing values in region '宁波市' in 2030-2030"),
])
def test_compare_cli_says_when_nothing_matches(db, args, message):
    out = run("--db", str(db), "compare", "licensing", *args)
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [message]
    assert out.stdout == b""

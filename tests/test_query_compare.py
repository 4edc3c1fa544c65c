"""`govreports query` and `compare` on a real warehouse file; the chart draws Chinese, not boxes."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from govreports.load.compare import NoMatch, chart, cjk_font, compare
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from tests import CLI
from tests.loadhelp import bundle
from tests.test_cli import assert_quiet_when_the_reader_leaves

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    lake = Lake(str(root / "parquet"))
    rows = [("330212-jtj", "鄞州区交通运输局", "浙江省/宁波市/鄞州区", [23285, 16363, 12000]),
            ("330203-jtj", "海曙区交通运输局", "浙江省/宁波市/海曙区", [1000, 1100, 1500]),
            ("320322-fgj", "沭阳县发展和改革局", "江苏省/宿迁市/沭阳县", [300, 200, 100])]
    lake.write([bundle(aid, name, 2019 + i, "2019" if i < 2 else "2021", v, 5, region=region)
                for aid, name, region, values in rows for i, v in enumerate(values)])
    return build(lake, root / "g.duckdb")


def run(*args):
    return subprocess.run([*CLI, *args], capture_output=True, cwd=ROOT, timeout=120)


def test_compare_orders_by_decline_and_filters_by_region(db):
    with connect(db) as con:
        wide, long = compare(con, "licensing", region="浙江省/宁波市", years=(2019, 2021))
    assert list(wide["agency"]) == ["鄞州区交通运输局", "海曙区交通运输局"]
    assert list(wide["change"]) == [-11285.0, 500.0]
    assert list(wide["2020"]) == [16363.0, 1100.0]
    assert set(long["year"]) == {2019, 2020, 2021}
    with connect(db) as con:
        top, _ = compare(con, "licensing", top=1)
    assert list(top["agency"]) == ["鄞州区交通运输局"]


def test_compare_options_are_parameters_not_sql(db):
    with connect(db) as con:
        with pytest.raises(NoMatch, match="no agency in region"):
            compare(con, "licensing", region="x' OR '1'='1")
        with pytest.raises(ValueError):
            compare(con, "licensing; DROP TABLE facts")


def test_compare_cli_with_chart(db, tmp_path):
    png = tmp_path / "licensing.png"
    out = run("--db", str(db), "compare", "licensing", "--region", "浙江省/宁波市", "--years", "2019-2021",
              "--chart", str(png))
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert text.index("鄞州区交通运输局") < text.index("海曙区交通运输局")
    assert "沭阳县" not in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_compare_cli_machine_formats_carry_the_data_alone(db, fmt):
    out = run("--db", str(db), "compare", "licensing", "--region", "宁波市", "--format", fmt)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    if fmt == "csv":
        lines = text.splitlines()
        assert lines[0].split(",")[:2] == ["agency", "region"] and len(lines) == 3
        assert lines[1].startswith("鄞州区交通运输局,浙江省/宁波市/鄞州区,")
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        assert [r["agency"] for r in rows] == ["鄞州区交通运输局", "海曙区交通运输局"]
        assert rows[0]["change"] == -11285
    assert "missing reports" in out.stderr.decode()  # the notes go to stderr, the data to stdout


def test_chart_has_every_chinese_glyph(db, tmp_path):
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(cjk_font()))
    for ch in "鄞州区交通运输局海曙沭阳县发展和改革行政许可处理决定数量年份":
        assert font.get_char_index(ord(ch)) != 0, ch
    with connect(db) as con:
        _, long = compare(con, "penalties")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        chart(long, tmp_path / "p.png", "行政处罚 处理决定数量")


def test_query_formats_and_read_only(db):
    out = run("--db", str(db), "query", "SELECT agency, year, decisions FROM licensing_trend "
              "WHERE agency_id = '330212-jtj' ORDER BY year", "--format", "json")
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout) == [{"agency": "鄞州区交通运输局", "year": 2019, "decisions": 23285.0},
                                      {"agency": "鄞州区交通运输局", "year": 2020, "decisions": 16363.0},
                                      {"agency": "鄞州区交通运输局", "year": 2021, "decisions": 12000.0}]
    out = run("--db", str(db), "query", "DROP TABLE facts_all_versions")
    assert out.returncode == 1
    assert "read-only" in out.stderr.decode().lower()
    out = run("--db", str(db), "query", "SELEC nonsense")
    assert out.returncode == 1 and "Traceback" not in out.stderr.decode()


def test_query_options_after_the_command_empty_sql_and_a_closed_pipe(db):
    out = run("query", "SELECT count(*) AS n FROM facts", "--db", str(db), "--format", "csv")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().splitlines()[0] == "n"
    out = run("query", "SELECT * FROM (VALUES (1, '甲'), (2, NULL)) t(n, name)", "--db", str(db), "--format", "jsonl")
    assert out.returncode == 0, out.stderr.decode()
    assert [json.loads(line) for line in out.stdout.decode().splitlines()] == [{"n": 1, "name": "甲"},
                                                                              {"n": 2, "name": None}]
    for empty in ("", "  ", ";", "/* nothing */"):
        out = run("query", empty, "--db", str(db))
        assert out.returncode == 1 and out.stdout == b""
        assert out.stderr.decode().splitlines() == ["govreports query: no SQL statement given"]
    assert_quiet_when_the_reader_leaves([*CLI, "--db", str(db), "query", "SELECT * FROM range(200000)",
                                         "--format", "csv"])


def test_query_does_not_import_prefect(db):
    code = ("import sys; from govreports.flows.cli import main; rc = main(['query', 'SELECT 1', '--db', sys.argv[1]]); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr.decode()


def test_query_without_a_warehouse_says_so(tmp_path):
    out = run("--db", str(tmp_path / "none.duckdb"), "query", "SELECT 1")
    assert out.returncode == 1
    assert "no warehouse" in out.stderr.decode()

"""What analysts take away from the warehouse: `govreports export` files (read back with pandas, openpyxl and
pyarrow) and the compare chart (its legend order and the template-change marker)."""

import csv
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from govreports.extract.sources import select
from govreports.load import export
from govreports.load.compare import TEMPLATE_CHANGE, chart, compare, figure
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from tests import CLI
from tests.loadhelp import bundle

ROOT = Path(__file__).resolve().parent.parent
ROWS = [("330212-jtj", "鄞州区交通运输局", "浙江省/宁波市/鄞州区", [23285, 16363, 12000]),
        ("330203-jtj", "海曙区交通运输局", "浙江省/宁波市/海曙区", [1000, 1100, 1500]),
        ("320322-fgj", "沭阳县发展和改革局", "江苏省/宿迁市/沭阳县", [300, 200, 100])]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    lake = Lake(str(root / "parquet"))
    lake.write([bundle(aid, name, 2019 + i, "2019" if i < 2 else "2021", v, 5, region=region)
                for aid, name, region, values in ROWS for i, v in enumerate(values)])
    return build(lake, root / "g.duckdb")


def run(db, *args):
    return subprocess.run([*CLI, "--db", str(db), "export", *args], capture_output=True, cwd=ROOT, timeout=120)


def headers() -> dict[str, str]:
    with (ROOT / "data" / "export_headers.csv").open(encoding="utf-8", newline="") as f:
        return {r["column"]: r["header"] for r in csv.DictReader(f)}


def test_xlsx_has_chinese_headers_and_only_the_region_and_years(db, tmp_path):
    out = run(db, "licensing_trend", "--format", "xlsx", "--region", "宁波市", "--years", "2020-2021",
              "-o", str(tmp_path / "t.xlsx"))
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == f"4 rows of licensing_trend written to {tmp_path / 't.xlsx'}"
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    with connect(db) as con:
        columns = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = "
                                             "'licensing_trend' ORDER BY column_index").fetchall()]
    assert list(rows[0]) == [headers()[c] for c in columns]
    data = pd.DataFrame(rows[1:], columns=columns)
    assert set(data["region"]) == {"浙江省/宁波市/鄞州区", "浙江省/宁波市/海曙区"}
    assert set(data["year"]) == {2020, 2021}
    assert sorted(data["decisions"]) == [1100, 1500, 12000, 16363]
    assert all(isinstance(v, int) for v in data["decisions"])  # numbers, not text, not 16363.0


def test_xlsx_labels_metric_codes_from_the_dictionary(db, tmp_path):
    out = run(db, "facts", "-o", str(tmp_path / "f.xlsx"), "--region", "鄞州区", "--years", "2021")
    assert out.returncode == 0, out.stderr.decode()
    data = pd.read_excel(tmp_path / "f.xlsx", engine="openpyxl")
    names = headers()
    assert list(data.columns[:3]) == [names["agency_id"], names["report_id"], names["agency"]]
    code = list(data.columns).index(names["metric"])
    assert data.columns[code + 1] == names["metric_label"] == "指标名称"
    row = data[data[names["metric"]] == "licensing_decisions"].iloc[0]
    assert row[names["metric_label"]] == "行政许可 本年处理决定数量"
    assert row[names["value"]] == 12000
    assert set(data[names["agency_id"]]) == {"330212-jtj"}  # facts has no region: by its agencies'


def test_csv_and_parquet_read_back(db, tmp_path):
    out = run(db, "facts", "-o", str(tmp_path / "f.csv"), "--region", "浙江省/宁波市")
    assert out.returncode == 0, out.stderr.decode()
    text = (tmp_path / "f.csv").read_text(encoding="utf-8-sig")
    assert ",23285," in text and "23285.0" not in text  # a count held as DOUBLE prints as a whole number
    data = pd.read_csv(tmp_path / "f.csv", encoding="utf-8-sig")
    assert set(data["agency_id"]) == {"330212-jtj", "330203-jtj"}
    assert data["page"].isna().all()  # null as empty
    out = run(db, "requests", "-o", str(tmp_path / "r.parquet"), "--years", "2019-2020")
    assert out.returncode == 0, out.stderr.decode()
    table = pq.read_table(tmp_path / "r.parquet")
    with connect(db) as con:
        expected = con.sql("SELECT * FROM requests WHERE year BETWEEN 2019 AND 2020").to_arrow_table()
    assert table.schema == expected.schema  # the database's types, integers as integers
    assert table.num_rows == expected.num_rows > 0
    assert sorted(table.to_pandas()["received"]) == sorted(expected.to_pandas()["received"])
    assert set(table.column("year").to_pylist()) == {2019, 2020}


@pytest.mark.parametrize("wanted", ["浙江", "浙江省", "浙江省/宁波市", "宁波市", "鄞州区", "江苏省/", "宿迁", "火星"])
def test_region_is_the_registrys_matcher(db, wanted):
    """--region keeps exactly the agencies that `fetch --region` selects from a registry of the same regions."""
    from govreports.extract.sources import Source

    registry = [Source(aid, name, *(region.split("/")), "", "county", "department", (), (), ())
                for aid, name, region, _ in ROWS]
    chosen = {s.agency_id for s in select(registry, region=wanted)}
    try:
        table = export.read(db, "licensing_trend", wanted)
    except export.ExportError as exc:
        assert not chosen and "no rows" in str(exc)
    else:
        assert set(table.column("agency_id").to_pylist()) == chosen


def test_every_column_of_the_database_has_a_chinese_header(db):
    with connect(db) as con:
        columns = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE NOT internal")
                   .fetchall()}
    assert columns - set(export.headers()) == set()


def test_errors_are_one_line_and_exit_1(db, tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_text("mine\n", encoding="utf-8")
    cases = {
        ("no_such_view", "-o", str(tmp_path / "a.csv")): "no table or view 'no_such_view'",
        ("facts", "-o", str(tmp_path / "b.csv"), "--region", "火星"): "facts: no rows in region '火星'",
        ("facts", "-o", str(tmp_path / "c.csv"), "--years", "2030-2031"): "facts: no rows in years",
        ("facts", "-o", str(tmp_path / "missing" / "d.csv")): f"cannot write {tmp_path / 'missing' / 'd.csv'}",
        ("facts", "-o", str(kept)): f"{kept} exists: choose another file, or --force",
        ("facts", "-o", str(tmp_path / "e.txt")): "cannot tell the format",
        ("build_info", "-o", str(tmp_path / "f.csv"), "--region", "宁波市"): "build_info: it has no region",
        ("sources", "-o", str(tmp_path / "g.csv"), "--years", "2020"): "sources: it has no year column",
    }
    for args, message in cases.items():
        out = run(db, *args)
        err = out.stderr.decode().splitlines()
        assert out.returncode == 1, (args, err)
        assert len(err) == 1 and err[0].startswith(f"govreports export: {message}"), (args, err)
    out = run(tmp_path / "none.duckdb", "facts", "-o", str(tmp_path / "h.csv"))
    assert out.returncode == 1 and out.stderr.decode().startswith("govreports export: no warehouse")
    assert kept.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]  # no file, nor a temporary one, left
    out = run(db, "facts", "-o", str(kept), "--force")
    assert out.returncode == 0, out.stderr.decode()
    assert kept.read_text(encoding="utf-8-sig").startswith("agency_id,report_id,")


def test_chart_legend_in_decline_order_and_template_change_marked(db):
    from matplotlib import pyplot as plt

    with connect(db) as con:
        wide, long = compare(con, "licensing")
    fig = figure(long.sample(frac=1, random_state=1), "行政许可")  # any row order: the chart sorts
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(wide["agency"]) == ["鄞州区交通运输局", "沭阳县发展和改革局", "海曙区交通运输局"]
    marks = [line for line in ax.get_lines() if list(line.get_xdata()) == [TEMPLATE_CHANGE, TEMPLATE_CHANGE]]
    assert len(marks) == 1 and 2020 < TEMPLATE_CHANGE < 2021
    assert any("template change" in t.get_text() for t in ax.texts)
    plt.close(fig)
    fig = figure(long[long["year"] >= 2021], "2021 only")  # nothing to mark within one template
    assert not fig.axes[0].texts
    plt.close(fig)


def test_a_name_matplotlib_would_read_as_math_is_drawn_as_it_is(db, tmp_path):
    with connect(db) as con:
        _, long = compare(con, "licensing")
    name = r"$\frac{$ 局"
    long = long.assign(agency=long["agency"].where(long["agency_id"] != long["agency_id"].iat[0], name))
    path = chart(long, tmp_path / "c.png", "行政许可 $x$")  # bad math raised ValueError at draw time
    assert path.stat().st_size > 1000
    fig = figure(long, "t")
    assert name.replace("$", r"\$") in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]

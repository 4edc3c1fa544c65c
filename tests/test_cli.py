"""`govreports parse`: outputs, exit codes, stdin, and no Prefect on the fast path."""

import json
import subprocess
import sys
from pathlib import Path

from tests import CLI

ROOT = Path(__file__).resolve().parent.parent
REPORT = "\n".join(
    ["某某区统计局2021年政府信息公开工作年度报告", "二、主动公开政府信息情况",
     "第二十条第（五）项 | | |", "信息内容 | 本年处理决定数量 | |", "行政许可 | 1,077 | |",
     "第二十条第（六）项 | | |", "信息内容 | 本年处理决定数量 | |", "行政处罚 | 12 | |", "行政强制 | / | |",
     "五、存在的主要问题及改进情况", "文字说明。"]
).encode()


def run(*args, stdin=b""):
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=60)


def test_parse_stdin_jsonl():
    out = run("parse", "-", "--format", "jsonl", stdin=REPORT)
    assert out.returncode == 0, out.stderr.decode()
    rows = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["licensing_decisions"]["value"] == 1077
    assert by_metric["licensing_decisions"]["agency"] == "某某区统计局"
    assert by_metric["licensing_decisions"]["year"] == 2021
    assert by_metric["coercion_decisions"]["value_status"] == "na"
    assert by_metric["coercion_decisions"]["value"] is None


def test_parse_csv_with_overrides(tmp_path):
    page = tmp_path / "r.txt"
    page.write_bytes(REPORT)
    out = run("parse", str(page), "--format", "csv", "--agency", "别名局", "--year", "2022")
    assert out.returncode == 0
    lines = out.stdout.decode().splitlines()
    assert lines[0].startswith("report_id,agency_id,agency,year,template,section,metric")
    assert all(",别名局,2022,2021,二," in line for line in lines[1:])


def test_failed_inputs_exit_2_with_one_line_each(tmp_path):
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    good = tmp_path / "good.txt"
    good.write_bytes(REPORT)
    out = run("parse", str(good), str(empty), str(junk), str(tmp_path / "missing.html"))
    assert out.returncode == 2
    err = out.stderr.decode().splitlines()
    assert len(err) == 3
    assert err[0] == f"{empty}: empty input"
    assert err[1].startswith(f"{junk}: cannot decode")
    assert err[2].startswith(f"{tmp_path / 'missing.html'}: cannot read")
    assert "Traceback" not in out.stderr.decode()
    assert "licensing_decisions" in out.stdout.decode()


def test_parse_does_not_import_prefect():
    code = ("import sys; from govreports.flows.cli import main; rc = main(['parse', '-', '--format', 'csv']); "
            "assert 'prefect' not in sys.modules, 'prefect imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], input=REPORT, capture_output=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr.decode()


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    assert "parse" in out.stdout.decode() and "demo" in out.stdout.decode()


def test_agency_and_year_from_title_variants():
    from govreports.extract.page import _agency_year_from_titles as from_titles

    cases = {
        "【2021年】宁波市鄞州区交通运输局政府信息公开工作年度报告": ("宁波市鄞州区交通运输局", 2021),
        "关于印发《鄞州区交通运输局2020年政府信息公开工作年度报告》的通知": ("鄞州区交通运输局", 2020),
        "2021年度鄞州区人民政府办公室政府信息公开工作年度报告": ("鄞州区人民政府办公室", 2021),
        "鄞州区交通运输局2022年度政府信息公开工作年度报告-鄞州区人民政府": ("鄞州区交通运输局", 2022),
        "現向社會公布2022年度本單位政府信息公開工作年度報告": (None, 2022),  # a pronoun names no one
    }
    for title, expected in cases.items():
        assert from_titles([title]) == expected, title


def test_version():
    from importlib.metadata import version

    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.decode().strip() == f"govreports {version('govreports')}"


def test_parse_with_nothing_parsed_prints_nothing(tmp_path):
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    for fmt in ("table", "csv", "jsonl"):
        out = run("parse", str(empty), "--format", fmt)
        assert out.returncode == 2 and out.stdout == b"", fmt
        assert out.stderr.decode().strip() == f"{empty}: empty input"


def test_a_closed_pipe_ends_parse_quietly():
    pages = sorted(str(p) for p in (ROOT / "data" / "sample_pages").iterdir())
    assert_quiet_when_the_reader_leaves([*CLI, "parse", *pages, "--format", "csv"])


def assert_quiet_when_the_reader_leaves(command: list[str]) -> None:
    """`command | head -1`: the output is bigger than a pipe holds, so the command does meet the closed pipe."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 1)
    assert first and "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_user_errors_are_one_line_and_exit_1(tmp_path):
    """Each user error: exit 1, one line on stderr naming the command, no traceback; none starts Prefect
    (so each answers at once, before any flow)."""
    sample = str(ROOT / "data" / "sample_site" / "sources.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    missing = str(tmp_path / "missing.csv")
    site = ("--sources", sample, "--site", "http://127.0.0.1:9")
    cases = {
        ("fetch", "--sources", missing): "govreports fetch: ",
        ("fetch", "--sources", str(bad)): "govreports fetch: ",
        ("run", "nightly", "--sources", missing): "govreports run: ",
        ("reparse", "--sources", str(bad)): "govreports reparse: ",
        ("fetch", *site, "--region", "火星"): "govreports fetch: no agency selected",
        ("run", "nightly", *site, "--agency", "nobody"): "govreports run: unknown agency id(s): 'nobody'",
        ("backfill", "--years", "2024-2019", *site): "govreports backfill: --years '2024-2019'",
        ("serve", *site, "--region", "火星"): "govreports serve: no agency selected",
        ("compare", "licensing", "--years", "20x"): "govreports compare: --years must look like",
        ("parse",): "govreports parse: ",  # no PATH: a usage error, exit 1, so that 2 means failed inputs
        ("query", "SELECT 1", "--warehouse", str(tmp_path)): "govreports query: no warehouse",
        ("compare", "requests", "--warehouse", str(tmp_path)): "govreports compare: no warehouse",
        (): "govreports: Missing command",
    }
    for args, start in cases.items():
        out = run(*args)
        err = out.stderr.decode().splitlines()
        assert out.returncode == 1, (args, err)
        assert len(err) == 1 and err[0].startswith(start), (args, err)
        assert out.stdout == b"", args


# -- table output: rich tables, CJK-aware, whole numbers, one spelling of missing, whole when piped ------------

def _cells_to(line: str, text: str) -> int:
    """Display cells from the start of `line` to the end of the first `text` in it (CJK characters are two)."""
    from rich.cells import cell_len

    return cell_len(line[:line.index(text) + len(text)])


def test_parse_table_aligns_chinese_and_prints_counts_as_integers():
    out = run("parse", "-", stdin=REPORT)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    header, rule, *rows = text.splitlines()
    assert set(rule) <= {"─", " "} and len(rows) == 3
    assert "\x1b" not in text  # no colour into a pipe
    for word in ("1077.0", "12.0", "NaN", "nan", "<NA>", "None"):
        assert word not in text, word
    by_metric = {row.split()[3]: row for row in rows}
    licensing, penalty, coercion = (by_metric[m] for m in ("licensing_decisions", "penalty_decisions",
                                                           "coercion_decisions"))
    # Right-aligned numbers end where their header ends, counted in display cells past Chinese text.
    assert _cells_to(licensing, " 1077 ") - 1 == _cells_to(penalty, " 12 ") - 1 == _cells_to(header, "value")
    # The missing value (行政强制 "/", status na) is blank, and the columns after it still line up.
    start = _cells_to(header, "value_status") - len("value_status")
    assert _cells_to(coercion, "  na ") - 3 == start == _cells_to(licensing, "number") - len("number")
    assert coercion.split()[-3:] == ["本年处理决定数量", "na", "/"]


def test_table_spells_every_missing_value_once_and_numbers_with_their_own_decimals(capsys):
    import pandas as pd

    from govreports.flows.cli import _print

    df = pd.DataFrame({"count": [23285.0, float("nan")], "money": [12.5, 0.1 + 0.2],
                       "n": pd.array([None, 3], dtype="Int64"), "who": ["鄞州区交通运输局", None],
                       "when": pd.to_datetime(["2024-01-31", None])})
    _print(df, "table")
    header, _, first, second = capsys.readouterr().out.splitlines()
    assert first.split() == ["23285", "12.5", "鄞州区交通运输局", "2024-01-31"]
    assert second.split() == ["0.3", "3"]
    assert _cells_to(first, "12.5") == _cells_to(second, "0.3") == _cells_to(header, "money")
    _print(df.iloc[:0], "table", "(no data)")
    assert capsys.readouterr().out == "(no data)\n"


def test_a_column_of_rounded_fractions_keeps_its_decimals_and_counts_stay_whole(capsys):
    import pandas as pd

    from govreports.flows.cli import _print

    _print(pd.DataFrame({"pct_change": [-58.7, 0.2, 73.0], "value": [0.0, 12.6, 5.0]}), "table")
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == [["-58.7", "0"], ["0.2", "12.6"], ["73.0", "5"]]
    # A DATE (pandas reads it as a timestamp at midnight) prints as a date; a time keeps its time.
    _print(pd.DataFrame({"published": pd.to_datetime(["2024-01-15", None]),
                         "fetched_at": pd.to_datetime(["2024-01-15 10:20", "2024-01-16 00:00"], utc=True)}), "table")
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == [["2024-01-15", "2024-01-15", "10:20:00+00:00"], ["2024-01-16", "00:00:00+00:00"]]


def test_a_long_table_piped_stays_whole_and_aligned(tmp_path):
    import duckdb
    from rich.cells import cell_len

    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    out = run("query", "SELECT '鄞州区' || i AS unit, i * 1000 AS n FROM range(1200) t(i) ORDER BY i", "--db", str(db))
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 2 + 1200 and lines[0].split() == ["unit", "n"]  # one header, however many rows
    assert lines[-1].split() == ["鄞州区1199", "1199000"]
    assert {cell_len(line) for line in lines[2:]} == {cell_len(lines[0])}  # every row ends where the header does
    assert_quiet_when_the_reader_leaves([*CLI, "query", "SELECT * FROM range(200000)", "--db", str(db)])


def test_importing_the_cli_does_not_import_rich_or_pandas():
    """`parse` and `query` start no slower than before: the table's libraries load when a table is printed."""
    code = ("import sys; import govreports.flows.cli; "
            "assert not {'rich', 'pandas'} & set(sys.modules), sorted({'rich', 'pandas'} & set(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr.decode()

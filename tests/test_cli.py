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
    assert lines[0].startswith("report_id,agency,year,template,section,metric")
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

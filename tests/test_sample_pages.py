"""End-to-end: the sample report pages, one per markup style, against hand-checked expectations.

Inputs and expectations (all under version control):
- data/sample_pages/<page>: twelve realistic report pages (HTML in several dialects, GBK without a charset,
  text renderings; two written by tests/render.py, see tests/test_text_grid.py SAMPLES), each listed in
  tests/fixtures/expected/pages.csv with its agency, year and template.
- tests/fixtures/expected/<page>.csv: every dictionary value the page prints (metric, applicant,
  value_status, value), and nothing else.
- tests/fixtures/expected/extra_rows.csv: printed rows that are not in the dictionary (metric null).
- tests/fixtures/bad/: inputs that must fail with a given reason, or parse as truncated; the expected
  complete rows of a truncated input are in tests/fixtures/expected/<file>.csv.
"""

from __future__ import annotations

import csv
import functools
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from govreports.flows.parse import parse_report
from govreports.transform.report import ParseFailure

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "data" / "sample_pages"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = FIXTURES / "expected"
BAD = FIXTURES / "bad"

SEED = "seed-yinzhou-transport-2020.txt"
# The seed prints 上年结转 商业企业 1 / 总计 1 and nothing else in 三, so 一 + 二 ≠ （七） + 四 in those columns.
SEED_FAILURES = {(1, "商业企业"), (1, "总计")}
HARD_STATUSES = {"pass", "fail", "not_assessable"}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


PAGE_ROWS = {r["page"]: r for r in _csv(EXPECTED / "pages.csv")}
PAGE_NAMES = list(PAGE_ROWS)
EXTRA_ROWS = _csv(EXPECTED / "extra_rows.csv")
BAD_ROWS = _csv(BAD / "expected.csv")


@functools.cache
def _parse(path_str: str):
    """(bytes, ParsedReport) of a file; parsed once per session."""
    data = Path(path_str).read_bytes()
    return data, parse_report(data, source=path_str)


def _page(name: str):
    return _parse(str(PAGES_DIR / name))


def _key(metric, applicant) -> tuple[str, str]:
    return str(metric), "" if pd.isna(applicant) else str(applicant)


def _by_key(facts: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """Facts with a metric, grouped by (metric, applicant or '')."""
    out: dict[tuple[str, str], list[dict]] = {}
    for row in facts[facts["metric"].notna()].to_dict("records"):
        out.setdefault(_key(row["metric"], row["applicant"]), []).append(row)
    return out


def _mismatches(facts: pd.DataFrame, expected: list[dict[str, str]]) -> list[str]:
    """Each expected (metric, applicant) present exactly once, with the expected status and value."""
    found = _by_key(facts)
    problems = []
    for e in expected:
        key = (e["metric"], e["applicant"])
        rows = found.get(key, [])
        if len(rows) != 1:
            problems.append(f"{key}: {len(rows)} rows, expected exactly 1")
            continue
        row = rows[0]
        where = f"{key} raw={row.get('raw')!r}"
        if row["value_status"] != e["value_status"]:
            problems.append(f"{where}: status {row['value_status']!r}, expected {e['value_status']!r}")
        if e["value_status"] == "number":
            if pd.isna(row["value"]) or float(row["value"]) != float(e["value"]):
                problems.append(f"{where}: value {row['value']!r}, expected {float(e['value'])!r}")
        elif not pd.isna(row["value"]):
            problems.append(f"{where}: value {row['value']!r}, expected null ({e['value_status']})")
    return problems


def _assert_traceable(facts: pd.DataFrame, data: bytes, source: str) -> None:
    assert len(facts) > 0
    sha = hashlib.sha256(data).hexdigest()
    assert (facts["content_sha256"] == sha).all()
    assert (facts["source"] == source).all()
    for col in ("row_index", "col_index", "raw"):
        assert facts[col].notna().all(), f"null {col} in {int(facts[col].isna().sum())} facts rows"


# ------------------------------------------------------------------------------------------------
# good pages
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGE_NAMES)
def test_every_expected_value_present_once(page):
    _data, report = _page(page)
    problems = _mismatches(report.facts, _csv(EXPECTED / f"{page}.csv"))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_no_unexpected_dictionary_values(page):
    _data, report = _page(page)
    expected = {(e["metric"], e["applicant"]) for e in _csv(EXPECTED / f"{page}.csv")}
    extra = sorted(set(_by_key(report.facts)) - expected)
    assert not extra, f"values not printed on the page: {extra[:20]}"


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_meta(page):
    _data, report = _page(page)
    want = PAGE_ROWS[page]
    meta = report.meta
    assert meta.agency == want["agency"]
    assert meta.year == int(want["year"])
    assert str(meta.template) == want["template"]
    assert meta.truncated is (want["truncated"] == "true")
    facts = report.facts
    assert (facts["agency"] == want["agency"]).all()
    assert (facts["year"] == int(want["year"])).all()
    in_dictionary = facts[facts["metric"].notna()]
    assert (in_dictionary["template"] == want["template"]).all()


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_extra_rows_kept_without_metric(page):
    _data, report = _page(page)
    facts = report.facts
    unmapped = facts[facts["metric"].isna()]
    want = [r for r in EXTRA_ROWS if r["page"] == page]
    for r in want:
        hit = unmapped[
            (unmapped["section"] == r["section"])
            & (unmapped["row_label"] == r["row_label"])
            & (unmapped["column_label"] == r["column_label"])
        ]
        assert len(hit) == 1, f"extra row {r['row_label']}/{r['column_label']}: {len(hit)} rows"
        assert hit.iloc[0]["value_status"] == "number"
        assert float(hit.iloc[0]["value"]) == float(r["value"])
    # Everything else on these pages is in the dictionary.
    assert len(unmapped) == len(want), unmapped[["section", "row_label", "column_label", "raw"]].to_string()


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_hard_checks(page):
    _data, report = _page(page)
    checks = report.checks
    hard = checks[checks["severity"] == "hard"]
    assert len(hard) > 0
    assert set(hard["status"]) <= HARD_STATUSES, set(hard["status"])
    assert (hard["status"] == "pass").any()
    failed = hard[hard["status"] == "fail"]
    got = {(int(r["rule"]), str(r["subject"])) for r in failed.to_dict("records")}
    assert got == (SEED_FAILURES if page == SEED else set()), failed.to_string()
    if page == SEED:
        for r in failed.to_dict("records"):
            # 一 + 二 = 0 + 1 on the left, （七） + 四 = 0 + 0 on the right
            assert {float(r["expected"]), float(r["actual"])} == {1.0, 0.0}


def test_printed_subtotal_is_checked():
    # misprints-2021.html prints a 不予公开 subtotal row: rule 4 compares it with its eight items.
    _data, report = _page("misprints-2021.html")
    checks = report.checks
    rule4 = checks[(checks["rule"] == 4) & (checks["status"] == "pass")]
    assert {"自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", "总计"} <= set(rule4["subject"])


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_traceability(page):
    data, report = _page(page)
    _assert_traceable(report.facts, data, str(PAGES_DIR / page))


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", BAD_ROWS, ids=[r["file"] for r in BAD_ROWS])
def test_bad_input(case):
    path = BAD / case["file"]
    data = path.read_bytes()
    if case["outcome"] == "error":
        with pytest.raises(ParseFailure) as info:
            parse_report(data, source=str(path))
        assert info.value.reason == case["reason"]
        return
    assert case["outcome"] == "truncated"
    report = parse_report(data, source=str(path))
    assert report.meta.truncated is True
    problems = _mismatches(report.facts, _csv(EXPECTED / f"{case['file']}.csv"))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    _assert_traceable(report.facts, data, str(path))

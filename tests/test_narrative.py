"""The prose against the tables: numbers a report's text restates, checked against what its tables print."""

from __future__ import annotations

import hashlib
import random
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govreports.extract.sources import Source
from govreports.flows.parse import parse_report
from govreports.flows.steps import PageRef, parse_page
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from govreports.transform import narrative
from govreports.transform.narrative import SEVERITY, narrative_records, patterns
from tests import loadhelp
from tests.render import STYLES, expected, random_spec, render


def _spec_and_values(seed: int, template: str):
    spec = random_spec(random.Random(seed), template, allow_blanks=False)
    values = {k: v for k, (status, v) in expected(spec).items() if status == "number"}
    return spec, values


def _with_prose(page: bytes, prose: str, encoding: str = "utf-8") -> bytes:
    """The rendered page with a paragraph of prose before its first table."""
    text = page.decode(encoding)
    at = text.index("<table")
    return (text[:at] + f"<p>{prose}</p>" + text[at:]).encode(encoding)


def _narrative(page: bytes) -> list:
    report = parse_report(page, "narrative.html")
    return [c for c in report.check_rows if c.severity == SEVERITY]


@pytest.mark.parametrize("template", ["2019", "2021"])
def test_sentences_that_restate_the_tables_match(template: str) -> None:
    spec, v = _spec_and_values(7, template)
    received = v[("requests_new", "总计")]
    granted = v[("outcome_disclosed", "总计")] + v[("outcome_partial", "总计")]
    reviews = v[("review_total", "")]
    suits = v[("suit_direct_total", "")] + v[("suit_after_review_total", "")]
    prose = (f"本年度全年共收到政府信息公开申请{received:.0f}件，其中予以公开及部分公开{granted:.0f}件。"
             f"因政府信息公开被申请行政复议{reviews:.0f}件，被提起行政诉讼{suits:.0f}件。")
    page = _with_prose(render(spec, "html_plain"), prose)
    found = {(c.rule, c.status, c.expected, c.actual) for c in _narrative(page)}
    assert found == {(21, "match", received, received), (23, "match", granted, granted),
                     (27, "match", reviews, reviews), (28, "match", suits, suits)}


def test_a_sentence_that_contradicts_its_table_is_a_mismatch_with_both_numbers() -> None:
    spec, v = _spec_and_values(11, "2021")
    printed = v[("outcome_disclosed", "总计")] + v[("outcome_partial", "总计")]
    said = printed + 17  # the prose says one number, the table another (as a real report did: 258 and 275)
    (check,) = _narrative(_with_prose(render(spec, "html_plain"), f"予以公开及部分公开{said:.0f}件"))
    assert (check.rule, check.status, check.expected, check.actual) == (23, "mismatch", printed, said)
    assert check.detail == f"予以公开及部分公开{said:.0f}件" and check.subject == "outcome_disclosed+outcome_partial"


def test_the_tables_own_text_is_not_prose() -> None:
    """The tables' labels and numbers, in every rendering, are never read as sentences about themselves."""
    for style in STYLES:
        spec, _ = _spec_and_values(3, "2021")
        assert _narrative(render(spec, style)) == [], style


def test_a_quantity_the_tables_do_not_print_is_not_in_table() -> None:
    (check,) = narrative_records("r", "全年共收到政府信息公开申请12件", [("review_total", None, 1.0, "number")])
    assert (check.status, check.expected, check.actual) == ("not_in_table", None, 12.0)
    (blank,) = narrative_records("r", "被申请行政复议0件", [("review_total", None, None, "blank")])
    assert blank.status == "not_in_table"


def test_each_pattern_reads_only_its_own_quantity() -> None:
    rows = [("outcome_disclosed", "总计", 5.0, "number"), ("outcome_partial", "总计", 2.0, "number"),
            ("outcome_disclosed", "自然人", 4.0, "number")]
    said = {(c.rule, c.actual) for c in narrative_records("r", "予以公开5件；部分公开2件；予以公开和部分公开7件", rows)}
    assert said == {(24, 5.0), (25, 2.0), (23, 7.0)}
    assert all(c.status == "match" for c in narrative_records("r", "予以公开5件；部分公开2件", rows))
    # Numbers the patterns do not name (proactive disclosure, hotline cases) are not read.
    assert narrative_records("r", "主动公开政府信息165条，办理热线交办事项6155件", rows) == []


def test_rules_are_unique_and_clear_of_the_identities() -> None:
    from govreports.transform.dictionary import identities

    rules = [p.rule for p in patterns()]
    assert len(rules) == len(set(rules)) and not set(rules) & {i.rule for i in identities()}


def test_the_warehouse_lists_the_prose_against_the_table(tmp_path) -> None:
    lake = Lake(str(tmp_path / "parquet"))
    prose = "全年共收到政府信息公开申请9件，予以公开8件。"  # the table prints 6 and 6
    page = loadhelp.page("鄞州区交通运输局", 2022, "2021", 120, 12, requests_new=6).replace(
        "本机关按要求做好公开工作。".encode(), prose.encode())
    source = Source("330212-jtj", "鄞州区交通运输局", "浙江省", "宁波市", "鄞州区", "", "county", "department", (), (),
                    ("127.0.0.1",))
    ref = PageRef("330212-jtj", "http://127.0.0.1/r.html", hashlib.sha256(page).hexdigest(), None,
                  pd.Timestamp("2023-01-20", tz="UTC"))
    lake.write([parse_page(page, ref, source, pd.Timestamp.now(tz="UTC"))])
    with connect(build(lake, tmp_path / "db.duckdb")) as con:
        rows = con.execute("SELECT rule, sentence, number, table_value, status, url FROM narrative_checks "
                           "ORDER BY rule").fetchall()
        quality = con.execute("SELECT narrative_mismatches, checks_failed FROM data_quality").fetchall()
    sentence = "全年共收到政府信息公开申请9件，予以公开8件"
    assert rows == [(21, sentence, 9, 6, "mismatch", ref.url), (24, sentence, 8, 6, "mismatch", ref.url)]
    assert quality == [(2, 0)]  # counted apart: a contradiction in prose is not a failed identity


# Phrases near every pattern: a keyword, maybe a filler, a number, a unit, a separator.
_PHRASES = st.lists(st.tuples(
    st.sampled_from(["收到信息公开申请", "新收", "受理", "上年结转申请", "予以公开", "部分公开", "办结申请", "行政复议",
                     "行政诉讼", "主动公开", ""]),
    st.sampled_from(["", "数量", "共", "及部分公开", "和", "、", "，"]), st.integers(0, 99).map(str),
    st.sampled_from(["件", "起", "条", " 件", ""]), st.sampled_from(["，", "。", "；", "\n", "|", ""])),
    max_size=8).map(lambda phrases: "".join("".join(p) for p in phrases))


@settings(max_examples=300, deadline=None)
@given(_PHRASES)
def test_the_one_search_that_passes_over_a_sentence_never_hides_a_restated_number(text) -> None:
    rows = [("requests_new", "总计", 12.0, "number"), ("outcome_disclosed", "总计", 3.0, "number")]
    found = narrative_records("r", text, rows)
    original = narrative._any_pattern
    narrative._any_pattern = lambda: re.compile("")  # lets every sentence through: each pattern tried on each
    try:
        assert narrative_records("r", text, rows) == found
    finally:
        narrative._any_pattern = original

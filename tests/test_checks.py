"""The format's identities on hand-made frames: pass, fail, not assessable, info."""

import pandas as pd

from govreports.transform.checks import check_records
from govreports.transform.dictionary import applicants
from govreports.transform.frame import CHECK_COLUMNS, frame_from_rows


def run_checks(cells, template="2021"):
    """The checks frame of `cells`: {(metric, applicant label or None): value or None (blank)}."""
    rows = [(m, a, v, "number" if v is not None else "blank", template) for (m, a), v in cells.items()]
    return frame_from_rows(check_records("r", rows), CHECK_COLUMNS)


def status(checks, rule, subject):
    row = checks[(checks["rule"] == rule) & (checks["subject"] == subject)]
    assert len(row) == 1, (rule, subject, checks)
    return row.iloc[0]["status"]


def section3(new, over, total, forward):
    return {**{("requests_new", a): new for _, a in applicants()},
            **{("requests_carried_over", a): over for _, a in applicants()},
            **{("outcome_total", a): total for _, a in applicants()},
            **{("requests_carried_forward", a): forward for _, a in applicants()}}


def test_identity1_pass_fail_and_blank():
    cells = section3(2, 1, 3, 0)
    cells[("requests_carried_over", "商业企业")] = 5
    cells[("requests_new", "科研机构")] = None
    checks = run_checks(cells)
    assert status(checks, 1, "自然人") == "pass"
    assert status(checks, 1, "商业企业") == "fail"
    assert status(checks, 1, "科研机构") == "not_assessable"
    failed = checks[(checks["rule"] == 1) & (checks["subject"] == "商业企业")].iloc[0]
    assert (failed["expected"], failed["actual"]) == (7.0, 3.0)


def test_identity3_row_total_and_identity4_only_with_a_subtotal():
    cells = {("outcome_withheld_state_secret", a): 1.0 for _, a in applicants()}
    cells[("outcome_withheld_state_secret", "总计")] = 7.0
    checks = run_checks(cells)
    assert status(checks, 3, "本年度办理结果/不予公开/属于国家秘密") == "fail"
    assert 4 not in set(checks["rule"])  # no 不予公开 subtotal printed: nothing to compare


def test_identity5_groups_and_2019_items_pattern_is_information_only():
    cells = {("review_upheld", None): 1, ("review_corrected", None): 1, ("review_other", None): 0,
             ("review_pending", None): 0, ("review_total", None): 2,
             ("licensing_items_prev_year", None): 10, ("licensing_items_change", None): 5,
             ("licensing_decisions", None): 300}
    checks = run_checks(cells, template="2019")
    assert status(checks, 5, "行政复议") == "pass"
    info = checks[checks["rule"] == 9]  # items_plus_change
    assert list(info["status"]) == ["info"]
    assert list(info["severity"]) == ["info"]
    assert "fail" not in set(checks["status"])


def test_rules_follow_the_template_of_section3():
    cells = {("outcome_total", "总计"): 3, ("outcome_disclosed", "总计"): 1, ("outcome_partial", "总计"): 0,
             ("outcome_other", "总计"): 2}
    checks_2019 = run_checks(cells, template="2019")
    rule2 = checks_2019[(checks_2019["rule"] == 2) & (checks_2019["subject"] == "总计")]
    # the 2019 rule names outcome_other; the other terms are not printed here
    assert list(rule2["status"]) == ["not_assessable"]
    assert "outcome_withheld_state_secret" in rule2.iloc[0]["detail"]
    assert isinstance(checks_2019, pd.DataFrame)


def test_rule_is_an_integer_column():
    checks = run_checks(section3(2, 1, 3, 0))
    assert str(checks["rule"].dtype) == "Int64" and 1 in set(checks["rule"])

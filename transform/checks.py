"""The format's own accounting identities (勾稽关系), evaluated on one report's long frame.

Rules are data (data/identities.csv). A failure is reported, never corrected; a blank or
not-given term makes a rule not assessable rather than failed; a rule none of whose terms the
report prints is not evaluated at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import cache

from govreports.transform import dictionary as dd
from govreports.transform.frame import Check

_TOLERANCE = 1e-6  # sums of decimals (万元) are not exact in binary


Row = tuple[str | None, str | None, float | None, str, str]  # metric, applicant, value, status, template
Cell = tuple[float | None, str]  # a printed cell: its number (None: not a number) and value_status


@cache
def _applicant_codes() -> dict[str, str]:
    return {label: code for code, label in dd.applicants()}


@cache
def _row_labels() -> dict[str, str]:
    """metric -> its row label, in dictionary order."""
    return {e.metric: e.row_label for e in dd.entries()}


@cache
def _row_order() -> dict[str, int]:
    return {m: i for i, m in enumerate(_row_labels())}


def _lookup(rows: Iterable[Row]) -> tuple[dict[tuple[str, str], Cell], dict[str, str]]:
    """(metric, applicant code or "") -> (value, status), and metric -> template."""
    codes = _applicant_codes()
    values: dict[tuple[str, str], Cell] = {}
    templates: dict[str, str] = {}
    for metric, applicant, value, status, template in rows:
        if not isinstance(metric, str):
            continue
        code = codes.get(applicant, "") if isinstance(applicant, str) else ""
        # value != value: NaN, from a frame's missing float
        v = None if value is None or value != value else float(value)
        values.setdefault((metric, code), (v, status))
        templates.setdefault(metric, template)
    return values, templates


def _evaluate(report_id: str, ident: dd.Identity, subject: str, values: dict[tuple[str, str], Cell],
              key: Callable[[str], tuple[str, str]]) -> Check | None:
    """The identity on the cells `key(term)` names in `values`; None when none of them is printed."""
    lhs, rhs = ([(t, values.get(key(t))) for t in side] for side in (ident.lhs, ident.rhs))
    terms = lhs + rhs
    if all(v is None for _, v in terms):
        return None
    missing = [name for name, v in terms if v is None]
    unusable = [f"{name}={v[1]}" for name, v in terms if v is not None and v[0] is None]
    if missing or unusable:
        notes = {"not printed": missing, "not a number": unusable}
        detail = "; ".join(f"{why}: {', '.join(names)}" for why, names in notes.items() if names)
        return Check(report_id, ident.rule, ident.severity, subject, None, None, "not_assessable", detail)
    expected = math.fsum(v[0] for _, v in lhs)
    actual = math.fsum(v[0] for _, v in rhs)
    ok = abs(expected - actual) <= _TOLERANCE
    status = "pass" if ok else ("fail" if ident.severity == "hard" else "info")
    return Check(report_id, ident.rule, ident.severity, subject, expected, actual, status, ident.description)


def check_records(report_id: str, rows: Iterable[Row]) -> list[Check]:
    """The checks as typed rows: the parser's fast path (frames are built per batch of pages)."""
    values, templates = _lookup(rows)
    present_metrics = {m for m, _ in values}
    labels, order = _row_labels(), _row_order()
    out: list[Check] = []
    for ident in dd.identities():
        # Each scope's checks: (subject, term -> the (metric, applicant code) of its cell).
        if ident.scope == "per_row":  # terms are applicant columns of each printed 三 row
            metrics = sorted({m for m, code in values if code}, key=order.__getitem__)
            groups = [(labels[m], lambda c, m=m: (m, c)) for m in metrics]
        elif not present_metrics & set(ident.lhs) or templates.get(ident.lhs[0]) not in ident.templates:
            continue  # the report prints no total for this rule (e.g. no subtotal row), or not in this template
        elif ident.scope == "per_applicant":
            groups = [(label, lambda m, code=code: (m, code)) for code, label in dd.applicants()]
        else:
            groups = [(labels.get(ident.lhs[0], ident.lhs[0]), lambda m: (m, ""))]
        checks = (_evaluate(report_id, ident, subject, values, key) for subject, key in groups)
        out.extend(c for c in checks if c is not None)
    return out

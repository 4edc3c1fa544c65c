"""The format's own accounting identities (勾稽关系), evaluated on one report's long frame.

Rules are data (data/identities.csv). A failure is reported, never corrected; a blank or
not-given term makes a rule not assessable rather than failed; a rule none of whose terms the
report prints is not evaluated at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

from govreports.transform import dictionary as dd
from govreports.transform.frame import Check

_TOLERANCE = 1e-6  # sums of decimals (万元) are not exact in binary


Row = tuple[str | None, str | None, float | None, str, str]  # metric, applicant, value, status, template


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


def _lookup(rows: Iterable[Row]) -> tuple[dict[tuple[str, str], tuple[float | None, str]], dict[str, str]]:
    """(metric, applicant code or "") -> (value, status), and metric -> template."""
    codes = _applicant_codes()
    values: dict[tuple[str, str], tuple[float | None, str]] = {}
    templates: dict[str, str] = {}
    for metric, applicant, value, status, template in rows:
        if not isinstance(metric, str):
            continue
        code = codes.get(applicant, "") if isinstance(applicant, str) else ""
        # value != value: NaN, from a frame's missing float
        v = None if value is None or value != value else float(value)
        key = (metric, code)
        if key not in values:
            values[key] = (v, status)
        if metric not in templates:
            templates[metric] = template
    return values, templates


def _evaluate(report_id: str, ident: dd.Identity, subject: str,
              lhs: list[tuple[str, tuple[float | None, str] | None]],
              rhs: list[tuple[str, tuple[float | None, str] | None]]) -> Check | None:
    terms = lhs + rhs
    if all(v is None for _, v in terms):
        return None
    missing = [name for name, v in terms if v is None]
    unusable = [f"{name}={v[1]}" for name, v in terms if v is not None and v[0] is None]
    if missing or unusable:
        detail = "; ".join(filter(None, [
            f"not printed: {', '.join(missing)}" if missing else "",
            f"not a number: {', '.join(unusable)}" if unusable else "",
        ]))
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
    out: list[Check] = []
    applicants = dd.applicants()
    labels = _row_labels()
    order = _row_order()

    def rows(ident: dd.Identity) -> Iterable[Check | None]:
        if ident.scope == "per_applicant":
            for code, label in applicants:
                yield _evaluate(report_id, ident, label,
                                [(m, values.get((m, code))) for m in ident.lhs],
                                [(m, values.get((m, code))) for m in ident.rhs])
        elif ident.scope == "per_row":
            metrics = sorted({m for m, code in values if code}, key=order.__getitem__)
            for m in metrics:
                yield _evaluate(report_id, ident, labels[m],
                                [(c, values.get((m, c))) for c in ident.lhs],
                                [(c, values.get((m, c))) for c in ident.rhs])
        else:
            yield _evaluate(report_id, ident, labels.get(ident.lhs[0], ident.lhs[0]),
                            [(m, values.get((m, ""))) for m in ident.lhs],
                            [(m, values.get((m, ""))) for m in ident.rhs])

    for ident in dd.identities():
        if ident.scope != "per_row":
            if not present_metrics & set(ident.lhs):
                continue  # the report prints no total for this rule (e.g. no subtotal row)
            template = templates.get(ident.lhs[0])
            if template not in ident.templates:
                continue
        out.extend(r for r in rows(ident) if r is not None)
    return out

"""The report's prose against its tables: numbers the text attaches to a known quantity
("全年共收到政府信息公开申请218件") compared with what the tables print for it.

The patterns are data (data/narrative.csv): each names the metrics whose sum (三: the 总计 column)
the sentence restates. A sentence is a run of prose between 。；; and line ends; a line that is a
table row drawn as text (a `|` or a tab in it) is not prose. Findings are Check rows of severity
"narrative": match | mismatch | not_in_table; they never count as failed identities.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

from govreports.transform.dictionary import read_csv
from govreports.transform.frame import Check

SEVERITY = "narrative"
_SENTENCE = re.compile(r"[^。；;\n]+")
_TABLE_LINE = re.compile(r"[|\t]")
_MAX_SENTENCE = 200  # characters kept of a sentence: enough to read it, bounded on hostile pages
_TOTAL = "总计"


class Pattern(NamedTuple):
    rule: int
    metrics: tuple[str, ...]
    regex: re.Pattern[str]
    description: str


@cache
def patterns() -> tuple[Pattern, ...]:
    return tuple(Pattern(int(r["rule"]), tuple(r["metrics"].split("+")), re.compile(r["pattern"]), r["description"])
                 for r in read_csv("narrative.csv"))


@cache
def _any_pattern() -> re.Pattern[str]:
    """Matches a sentence iff some pattern does (an alternation tries every pattern at every position): one
    search per sentence passes over the many that restate nothing, instead of one per pattern."""
    return re.compile("|".join(f"(?:{p.regex.pattern})" for p in patterns()))


def _table_value(metrics: tuple[str, ...], values: dict[str, float | None]) -> float | None:
    """The sum the tables print for `metrics` (三: the 总计 column); None when any is not a number."""
    got = [values.get(m) for m in metrics]
    return None if any(v is None for v in got) else math.fsum(got)  # type: ignore[arg-type]


def narrative_records(report_id: str, text: str,
                      rows: Iterable[tuple[str | None, str | None, float | None, str]]) -> list[Check]:
    """One Check per number the prose attaches to a known quantity. `rows`: (metric, applicant label,
    value, value_status) of the report's facts."""
    values: dict[str, float | None] = {}
    for metric, applicant, value, status in rows:
        if metric and applicant in (None, _TOTAL):
            ok = status == "number" and value is not None and value == value
            values.setdefault(metric, float(value) if ok else None)  # type: ignore[arg-type]
    out: list[Check] = []
    maybe = _any_pattern().search
    for line in text.splitlines():
        if _TABLE_LINE.search(line):
            continue
        for sentence in _SENTENCE.findall(line):
            if not maybe(sentence):
                continue
            for p in patterns():
                for m in p.regex.finditer(sentence):
                    said = float(m.group(1))
                    printed = _table_value(p.metrics, values)
                    status = ("not_in_table" if printed is None else "match" if printed == said else "mismatch")
                    out.append(Check(report_id, p.rule, SEVERITY, "+".join(p.metrics), printed, said, status,
                                     sentence.strip()[:_MAX_SENTENCE]))
    return out

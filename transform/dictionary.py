"""The data dictionary (data/dictionary.csv) and the identities (data/identities.csv), loaded once.

Every cell of both official templates is one row of the dictionary; everything else in the code
that knows a label, a unit or a metric code gets it from here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

# The data files ship inside the package (govreports.data), in a checkout and in a wheel alike.
DATA_DIR = Path(str(resources.files("govreports.data")))
TEMPLATES = ("2019", "2021")


@dataclass(frozen=True, slots=True)
class Entry:
    """One cell of one or both templates."""

    metric: str
    section: str  # 二 | 三 | 四
    block: str  # 二: the item of article 20 ("1", "5", "6", "8", "9"); else ""
    row_key: str
    col_key: str
    row_label: str  # official; 三 as a path joined by "/"
    column_label: str
    applicant: str  # 三 only
    templates: tuple[str, ...]
    unit: str  # count | wan_yuan
    kind: str  # cell | subtotal (a row some agencies add; not in the template)
    continues: bool  # the same quantity under the same code in both templates


@dataclass(frozen=True, slots=True)
class Identity:
    rule: int  # data/identities.csv: 1-5 hard, 9 the 2019 items + change (info)
    severity: str  # hard | info
    scope: str  # per_applicant | per_row | single
    templates: tuple[str, ...]
    lhs: tuple[str, ...]
    rhs: tuple[str, ...]
    description: str


def _read(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def entries() -> tuple[Entry, ...]:
    """All dictionary rows, validated: the (section, block, template, row, column) key is unique."""
    out = []
    seen: set[tuple[str, ...]] = set()
    for n, r in enumerate(_read("dictionary.csv"), start=2):
        templates = tuple(r["template"].split("|"))
        if not set(templates) <= set(TEMPLATES) or r["section"] not in ("二", "三", "四"):
            raise ValueError(f"data/dictionary.csv line {n}: bad template or section: {r}")
        e = Entry(
            metric=r["metric"], section=r["section"], block=r["block"], row_key=r["row_key"],
            col_key=r["col_key"], row_label=r["row_label"], column_label=r["column_label"],
            applicant=r["applicant"], templates=templates, unit=r["unit"], kind=r["kind"],
            continues=r["continues"] == "yes",
        )
        for t in templates:
            key = (e.section, e.block, t, e.row_key, e.col_key)
            if key in seen:
                raise ValueError(f"data/dictionary.csv line {n}: duplicate cell {key}")
            seen.add(key)
        out.append(e)
    return tuple(out)


@cache
def cell_index() -> dict[tuple[str, str, str, str, str], Entry]:
    """(section, block, template, row_key, col_key) -> entry."""
    return {(e.section, e.block, t, e.row_key, e.col_key): e for e in entries() for t in e.templates}


@cache
def block_columns() -> dict[tuple[str, str], tuple[str, ...]]:
    """(二 block, template) -> its column keys in the template's order."""
    out: dict[tuple[str, str], list[str]] = {}
    for e in entries():
        if e.section != "二":
            continue
        for t in e.templates:
            cols = out.setdefault((e.block, t), [])
            if e.col_key not in cols:
                cols.append(e.col_key)
    return {k: tuple(v) for k, v in out.items()}


@cache
def applicants() -> tuple[tuple[str, str], ...]:
    """三's applicant columns in printed order: (code, label)."""
    out: list[tuple[str, str]] = []
    for e in entries():
        if e.section == "三" and (e.col_key, e.applicant) not in out:
            out.append((e.col_key, e.applicant))
    return tuple(out)


@cache
def identities() -> tuple[Identity, ...]:
    return tuple(
        Identity(
            rule=int(r["rule"]), severity=r["severity"], scope=r["scope"],
            templates=tuple(r["template"].split("|")), lhs=tuple(r["lhs"].split("+")),
            rhs=tuple(r["rhs"].split("+")), description=r["description"],
        )
        for r in _read("identities.csv")
    )


@cache
def structure() -> tuple[dict[str, str], ...]:
    """Section headings and structural header words (data/structure.csv)."""
    return tuple(_read("structure.csv"))


@cache
def label_aliases() -> dict[str, str]:
    """Printed variant -> official label (data/aliases.csv, kind=label)."""
    return {r["printed"]: r["official"] for r in _read("aliases.csv") if r["kind"] == "label"}

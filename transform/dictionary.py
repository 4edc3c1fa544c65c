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


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def entries() -> tuple[Entry, ...]:
    """All dictionary rows, validated: the (section, block, template, row, column) key is unique."""
    out = []
    seen: set[tuple[str, ...]] = set()
    for n, r in enumerate(read_csv("dictionary.csv"), start=2):
        r["templates"] = tuple(r.pop("template").split("|"))
        e = Entry(**r | {"continues": r["continues"] == "yes"})  # the file's columns are Entry's fields
        if not set(e.templates) <= set(TEMPLATES) or e.section not in ("二", "三", "四"):
            raise ValueError(f"data/dictionary.csv line {n}: bad template or section: {r}")
        for t in e.templates:
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
    out: dict[tuple[str, str], dict[str, None]] = {}  # a dict as an ordered set
    for e in entries():
        for t in e.templates if e.section == "二" else ():
            out.setdefault((e.block, t), {})[e.col_key] = None
    return {k: tuple(v) for k, v in out.items()}


@cache
def applicants() -> tuple[tuple[str, str], ...]:
    """三's applicant columns in printed order: (code, label)."""
    return tuple(dict.fromkeys((e.col_key, e.applicant) for e in entries() if e.section == "三"))


@cache
def identities() -> tuple[Identity, ...]:
    return tuple(
        Identity(int(r["rule"]), r["severity"], r["scope"], tuple(r["template"].split("|")),
                 tuple(r["lhs"].split("+")), tuple(r["rhs"].split("+")), r["description"])
        for r in read_csv("identities.csv")
    )


@cache
def structure() -> tuple[dict[str, str], ...]:
    """Section headings and structural header words (data/structure.csv)."""
    return tuple(read_csv("structure.csv"))


@cache
def label_aliases() -> dict[str, str]:
    """Printed variant -> official label (data/aliases.csv, kind=label)."""
    return {r["printed"]: r["official"] for r in read_csv("aliases.csv") if r["kind"] == "label"}

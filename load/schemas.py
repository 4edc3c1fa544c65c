"""The lake's three datasets, declared once: their pyarrow schemas and their partitioning.

Files are partitioned as `year=<year>/agency_id=<agency_id>/`: the two partition keys live in the path,
every other column (the agency's Chinese name `agency` among them) in the file, under its own name.
"""

from __future__ import annotations

import re

import pyarrow as pa

from govreports.data.schema import CHECKS, FACTS, REPORTS, Column, pandas_types

PARTITION_KEYS = ("year", "agency_id")  # year (int; 0 = not known), the ASCII agency id
UNKNOWN_YEAR = 0
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _stored(*columns: Column) -> pa.Schema:
    """A dataset's file schema: the partition keys live in the path; every column may be null in a file."""
    return pa.schema([pa.field(c.name, c.arrow) for c in columns if c.name not in PARTITION_KEYS])


REPORT_COLUMNS: dict[str, str] = pandas_types(REPORTS)  # one row per report version (data/schema.py)

SCHEMAS: dict[str, pa.Schema] = {
    "facts": _stored(*FACTS),
    "reports": _stored(*REPORTS),
    "checks": _stored(Column("agency", "str", "the report's agency name, as in facts"), *CHECKS),
}
DATASETS = tuple(SCHEMAS)

"""The lake's three datasets, declared once: their pyarrow schemas and their partitioning.

Files are partitioned as `year=<year>/agency=<agency_id>/`. Hive partition values override a file
column of the same name, so inside the files the Chinese agency name is stored as `agency_name`;
the warehouse's views give it back its long-frame name `agency` and call the partition `agency_id`.
"""

from __future__ import annotations

import re

import pyarrow as pa

from govreports.data.schema import REPORTS, pandas_types
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS

PARTITION_KEYS = ("year", "agency")  # year (int; 0 = not known), agency (the ASCII agency_id)
UNKNOWN_YEAR = 0
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_ARROW = {"string": pa.string(), "Int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
          "datetime": pa.timestamp("us", tz="UTC")}


def _schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([pa.field(name, _ARROW[dtype]) for name, dtype in columns.items()])


def _stored(columns: dict[str, str]) -> dict[str, str]:
    """Columns as stored in a file: the partition keys (year, agency_id) live in the path; the
    agency's name is stored as agency_name."""
    return {("agency_name" if k == "agency" else k): v for k, v in columns.items() if k not in ("year", "agency_id")}


REPORT_COLUMNS: dict[str, str] = pandas_types(REPORTS)  # one row per report version (data/schema.py)

SCHEMAS: dict[str, pa.Schema] = {
    "facts": _schema(_stored(FACT_COLUMNS)),
    "reports": _schema(_stored(REPORT_COLUMNS)),
    "checks": _schema(_stored(CHECK_COLUMNS)),
}
DATASETS = tuple(SCHEMAS)

"""The lake's three datasets, declared once: their pyarrow schemas and their partitioning.

Files are partitioned as `year=<year>/agency_id=<agency_id>/`: the two partition keys live in the path,
every other column (the agency's Chinese name `agency` among them) in the file, under its own name.
"""

from __future__ import annotations

import re

import pyarrow as pa

from govreports.data.schema import REPORTS, pandas_types
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS

PARTITION_KEYS = ("year", "agency_id")  # year (int; 0 = not known), the ASCII agency id
UNKNOWN_YEAR = 0
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_ARROW = {"string": pa.string(), "Int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
          "datetime": pa.timestamp("us", tz="UTC")}


def _schema(columns: dict[str, str]) -> pa.Schema:
    return pa.schema([pa.field(name, _ARROW[dtype]) for name, dtype in columns.items()])


def _stored(columns: dict[str, str]) -> dict[str, str]:
    """Columns as stored in a file: the partition keys live in the path."""
    return {k: v for k, v in columns.items() if k not in PARTITION_KEYS}


REPORT_COLUMNS: dict[str, str] = pandas_types(REPORTS)  # one row per report version (data/schema.py)

SCHEMAS: dict[str, pa.Schema] = {
    "facts": _schema(_stored(FACT_COLUMNS)),
    "reports": _schema(_stored(REPORT_COLUMNS)),
    "checks": _schema(_stored({"agency": "string", **CHECK_COLUMNS})),  # the report's agency name, as facts
}
DATASETS = tuple(SCHEMAS)

"""The lake's three datasets, declared once: their pyarrow schemas and their partitioning.

Files are partitioned as `year=<year>/agency_id=<agency_id>/`: the two partition keys live in the path,
every other column (the agency's Chinese name `agency` among them) in the file, under its own name.
"""

from __future__ import annotations

import re

import pyarrow as pa

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


# One row per report version (a page's bytes), parsed or not.
REPORT_COLUMNS: dict[str, str] = {
    "report_id": "string",
    "agency_id": "string",
    "agency": "string",  # the agency's name as the registry (else the page) gives it
    "region": "string",  # 浙江省/宁波市/鄞州区: the agency's jurisdiction
    "parent_region": "string",  # the region one level up: where sibling units are compared
    "level": "string",  # province | city | county | township
    "kind": "string",  # government | department
    "year": "Int64",
    "template": "string",
    "url": "string",
    "content_sha256": "string",
    "title": "string",
    "published": "string",  # ISO date from the page's metadata box
    "fetched_at": "datetime",
    "loaded_at": "datetime",
    "status": "string",  # parsed | truncated | failed
    "failure": "string",  # why a page yielded no report tables
    "n_values": "Int64",
    "n_unparsed": "Int64",
    "n_checks_failed": "Int64",
    "n_checks_not_assessable": "Int64",
    "sections": "string",  # the sections whose tables were read, e.g. 二三四
    "problems": "string",  # the parser's notes, one per line
    "is_current": "bool",  # the latest version of this agency's report for this year
}

SCHEMAS: dict[str, pa.Schema] = {
    "facts": _schema(_stored(FACT_COLUMNS)),
    "reports": _schema(_stored(REPORT_COLUMNS)),
    "checks": _schema(_stored({"agency": "string", **CHECK_COLUMNS})),  # the report's agency name, as facts
}
DATASETS = tuple(SCHEMAS)

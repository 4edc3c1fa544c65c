"""Every dataset's columns, declared once: name, type and meaning, in column order.

A leaf module (pyarrow only): extract, transform and load all import it. Each type stands for one
pandas dtype, one Arrow type and one DuckDB type (TYPES), so the three never disagree.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa


class Type(NamedTuple):
    pandas: str  # "datetime": the lake's name for a UTC timestamp column (datetime64[us, UTC])
    arrow: pa.DataType
    duckdb: str


TYPES: dict[str, Type] = {
    "str": Type("string", pa.string(), "VARCHAR"),
    "int": Type("Int64", pa.int64(), "BIGINT"),
    "int32": Type("Int32", pa.int32(), "INTEGER"),
    "float": Type("float64", pa.float64(), "DOUBLE"),
    "bool": Type("bool", pa.bool_(), "BOOLEAN"),
    "time": Type("datetime", pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
    "date": Type("date32[pyarrow]", pa.date32(), "DATE"),  # a calendar day; written from an ISO string
}


class Column(NamedTuple):
    name: str
    type: str  # a key of TYPES
    meaning: str
    required: bool = False  # never null

    @property
    def pandas(self) -> str:
        return TYPES[self.type].pandas

    @property
    def arrow(self) -> pa.DataType:
        return TYPES[self.type].arrow


C = Column

# The long frame: one row per reported value.
FACTS: tuple[Column, ...] = (
    C("report_id", "str", "the report version: the first 16 hex digits of the page's sha256"),
    C("agency_id", "str", "the agency's ASCII id from the registry; null when parsed outside the pipeline"),
    C("agency", "str", "the agency's name: the registry's, else the page's, else the listing link's"),
    C("year", "int", "the year reported on"),
    C("template", "str", "2019 | 2021: the template of the block the value sits in"),
    C("section", "str", "二 | 三 | 四"),
    C("metric", "str", "ASCII code from data/dictionary.csv; null for rows not in the dictionary"),
    C("row_label", "str", "official row label (三: a path joined by /); printed label if unknown"),
    C("column_label", "str", "official column label (三: the applicant; 四: the result)"),
    C("applicant", "str", "三 only: 自然人 … 其他, 总计"),
    C("value", "float", "a number or null, never a string"),
    C("unit", "str", "count | wan_yuan"),
    C("value_status", "str", "number | blank | na | unparsed"),
    C("raw", "str", "the cell's text as printed"),
    C("table_index", "int", "HTML: index among the page's <table> elements; text: 0"),
    C("row_index", "int", "HTML: grid row after span expansion; text: line number (0-based)"),
    C("col_index", "int", "HTML: grid column after span expansion; text: cell index on its line"),
    C("page", "int", "PDF: the 1-based page the cell is printed on; null for other forms"),
    C("source", "str", "URL or path the bytes came from (a file's own URL, not its page's)"),
    C("content_sha256", "str", "sha256 of the raw bytes"),
)

# One row per identity evaluated on a report.
CHECKS: tuple[Column, ...] = (
    C("report_id", "str", "the report version"),
    C("rule", "int", "rule number from data/identities.csv: 1-5 hard, 9 the 2019 items + change (info); "
                     "21-28 the prose patterns of data/narrative.csv"),
    C("severity", "str", "hard | info | narrative (the prose against the tables)"),
    C("subject", "str", "the column, row or group the rule was evaluated on"),
    C("expected", "float", "the left-hand side (the printed total)"),
    C("actual", "float", "the right-hand side (the sum of its parts)"),
    C("status", "str", "pass | fail | not_assessable (info rules: pass | info | not_assessable; narrative: "
                       "match | mismatch | not_in_table)"),
    C("detail", "str", "the rule's description, or why it could not be assessed; narrative: the sentence"),
)

# The registry's agencies, as the warehouse's `sources` table holds them (what `coverage` counts).
SOURCES: tuple[Column, ...] = (
    C("agency_id", "str", "the agency's ASCII id", required=True),
    C("agency", "str", "the agency's name"),
    C("region", "str", "浙江省/宁波市/鄞州区: the agency's jurisdiction"),
    C("level", "str", "province | city | county | township"),
    C("kind", "str", "government | department"),
)

# One row per report version (a page's or a file's bytes), parsed or not.
REPORTS: tuple[Column, ...] = (
    C("report_id", "str", "the report version"),
    C("agency_id", "str", "the agency's ASCII id from the registry"),
    C("agency", "str", "the agency's name as the registry (else the page, else the link) gives it"),
    C("region", "str", "浙江省/宁波市/鄞州区: the agency's jurisdiction"),
    C("parent_region", "str", "the region one level up: where sibling units are compared"),
    C("level", "str", "province | city | county | township"),
    C("kind", "str", "government | department"),
    C("year", "int", "the year reported on"),
    C("template", "str", "2019 | 2021"),
    C("url", "str", "where the page or file was fetched"),
    C("form", "str", "html | text | pdf | docx | doc (a WPS file too) | rtf: what the bytes are (null when not read)"),
    C("source_page", "str", "a file's: the URL of the page that linked it; null for pages"),
    C("content_sha256", "str", "sha256 of the raw bytes"),
    C("title", "str", "the page's title"),
    C("published", "date", "the day the page says it was published: its metadata box, a <meta> tag or the date "
                           "line under its title; null when it says none"),
    C("fetched_at", "time", "when this version was first fetched"),
    C("loaded_at", "time", "when it was parsed and loaded"),
    C("status", "str", "parsed | truncated | failed"),
    C("failure", "str", "why a page yielded no report tables"),
    C("n_values", "int", "facts rows"),
    C("n_unparsed", "int", "facts rows whose cell could not be read as a number"),
    C("n_checks_failed", "int", "hard checks failed"),
    C("n_checks_not_assessable", "int", "checks that could not be assessed"),
    C("sections", "str", "the sections whose tables were read, e.g. 二三四"),
    C("problems", "str", "the parser's notes, one per line"),
    C("is_current", "bool", "the version of this agency's report for this year that is used: of those that "
                            "parsed, a page before a file, then the one the fetch log saw last; decided at each "
                            "build, not stored in the lake"),
)

# Every fetch attempt (extract/fetchlog.py's log).
FETCH_LOG: tuple[Column, ...] = (
    C("url", "str", "the URL asked for", required=True),
    C("final_url", "str", "where the redirects ended"),
    C("agency_id", "str", "the agency whose crawl asked"),
    C("year", "int32", "the year the listing link names"),
    C("kind", "str", "listing | report | file (a report as PDF, Word, WPS) | attachment | image | agency (a crawl "
                     "error)"),
    C("status", "int32", "HTTP status"),
    C("etag", "str", "the response's ETag"),
    C("last_modified", "str", "the response's Last-Modified"),
    C("sha256", "str", "sha256 of the body (its key in the raw zone)"),
    C("bytes", "int", "body size"),
    C("fetched_at", "time", "when the attempt ended", required=True),
    C("outcome", "str", "new | new_version | unchanged | not_modified | fetched | failed | refused | "
                        "attachment | image_only", required=True),
    C("error", "str", "why the attempt failed or was refused"),
    C("declared_charset", "str", "the charset the Content-Type header declared"),
    C("link_agency", "str", "the agency the listing link's text names"),
    C("linked_from", "str", "file: the report page that linked it; null for a listing's links"),
)


def pandas_types(columns: tuple[Column, ...]) -> dict[str, str]:
    """name -> pandas dtype, in column order."""
    return {c.name: c.pandas for c in columns}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow, nullable=not c.required) for c in columns])

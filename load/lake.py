"""The Parquet lake: facts, reports and checks, partitioned by year and agency.

Each partition (one agency's reports of one year, every version of them) is one file,
`<dataset>/year=<y>/agency_id=<agency_id>/part.parquet`. Loading a report rewrites its partition's file:
the rows of that report_id are replaced, never duplicated, and the new file is written beside the
old one and moved over it, so a reader sees the old partition or the new one, never half of one.
Beside each file, `part.parquet.sha256` holds the sha256 of its bytes (and of the file it replaced: it is
written first), so a file whose bytes match neither was changed outside the pipeline (`verified`). Which
version of a report is current is no property of the version: the warehouse decides it at each build,
from the fetch log (load/views/10_current.sql).
The root may be a local path or a URL that pyarrow's filesystems understand (file://, s3://).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from govreports.data.schema import CHECKS, FACTS, REPORTS, Column, pandas_types
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS

PART_FILE = "part.parquet"
CHECKSUM_SUFFIX = ".sha256"  # part.parquet.sha256: the hex sha256 of part.parquet's bytes
COMPRESSION = "zstd"
PARTITION_KEYS = ("year", "agency_id")  # year (int; 0 = not known), the ASCII agency id
UNKNOWN_YEAR = 0
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The lake's format, in a file at its root: "3" = every partition file has facts.page, reports.form and
# reports.source_page, and reports.published as a date ("2": maybe an ISO string). Written before the first
# partition of a new lake (or by reparse); a lake without it may hold older files, which the build then reads
# by column name (slower, more memory; a column that is a string in any file reads as a string: read without
# it, the first file's type would win, and an old string that is no real day would fail the build). A
# partition rewritten by a load is read with the current schema: its older rows are cast on the way.
FORMAT_FILE, FORMAT = "FORMAT", "3"
DECIDED_AT_BUILD = ("is_current",)  # reports' columns that the warehouse computes, never stored
REPORT_COLUMNS: dict[str, str] = pandas_types(REPORTS)  # one row per report version (data/schema.py)

log = logging.getLogger(__name__)


def _stored(*columns: Column) -> pa.Schema:
    """A dataset's file schema: the partition keys live in the path, the build's columns in the
    warehouse, every other column in the file."""
    return pa.schema([pa.field(c.name, c.arrow) for c in columns
                      if c.name not in PARTITION_KEYS + DECIDED_AT_BUILD])


SCHEMAS: dict[str, pa.Schema] = {  # the lake's three datasets, declared once
    "facts": _stored(*FACTS),
    "reports": _stored(*REPORTS),
    "checks": _stored(Column("agency", "str", "the report's agency name, as in facts"), *CHECKS),
}


class LakeError(ValueError):
    """A report that cannot be placed in the lake (bad agency id or year), or a lake this version
    cannot read."""


@dataclass(slots=True)
class ReportBundle:
    """One report version: its `reports` row (REPORT_COLUMNS) and its facts and checks as row tuples
    (FACT_COLUMNS and CHECK_COLUMNS order): a batch goes to Arrow in one step, with no frame per page."""

    report: dict
    fact_rows: list[tuple]
    check_rows: list[tuple]


class Tampered(NamedTuple):
    """A partition file whose bytes are not those written by the pipeline."""

    dataset: str
    year: int
    agency_id: str
    path: str
    recorded_sha256: str
    actual_sha256: str


class WriteSummary(NamedTuple):
    reports: int
    facts: int
    checks: int
    partitions: set[tuple[int, str]]


def partition_dir(root: str, dataset: str, year: int, agency_id: str) -> str:
    """The partition's directory. Ids are checked here, at the last step before a path is made,
    so that no agency id (/, .., NUL, control characters) can leave the lake's root."""
    if not isinstance(agency_id, str) or not AGENCY_ID.fullmatch(agency_id) or ".." in agency_id:
        raise LakeError(f"agency id {agency_id!r} is not a safe ASCII id")
    if not isinstance(year, int) or not (year == UNKNOWN_YEAR or 1990 <= year <= 2100):
        raise LakeError(f"year {year!r} out of range")
    return f"{root}/{dataset}/year={year}/agency_id={agency_id}"


def _partition(path: str) -> tuple[int, str]:
    """(year, agency_id) of a partition file's path."""
    parts = dict(p.split("=", 1) for p in path.split("/")[-3:-1])
    return int(parts["year"]), parts["agency_id"]


def _rows_table(dataset: str, rows: list[tuple], columns: dict[str, str]) -> pa.Table:
    """Row tuples in `columns` order -> the dataset's stored schema (the partition keys are left to
    the path)."""
    schema = SCHEMAS[dataset]
    by_name = dict(zip(columns, zip(*rows, strict=True), strict=True)) if rows else {}
    # A date arrives as an ISO string (extract/page.py validates it): Arrow parses it in the cast.
    arrays = [pa.array(by_name.get(f.name, ()), pa.string() if pa.types.is_date(f.type) else f.type,
                       from_pandas=True).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


class Lake:
    def __init__(self, root: str) -> None:
        """`root`: a local path or a filesystem URL."""
        if "://" in str(root):
            self.fs, path = pafs.FileSystem.from_uri(str(root))
            self.root = path.rstrip("/")
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(root)

    def is_current_format(self) -> bool:
        """Every partition file has the current columns (the marker says so)."""
        try:
            with self.fs.open_input_stream(f"{self.root}/{FORMAT_FILE}") as f:
                return f.read(16).decode().strip() == FORMAT
        except (FileNotFoundError, OSError):
            return False

    def mark_format(self) -> None:
        """Say that every partition file has the current columns (a new lake; a reparse that rewrote all)."""
        self.fs.create_dir(self.root, recursive=True)
        with self.fs.open_output_stream(f"{self.root}/{FORMAT_FILE}") as f:
            f.write(FORMAT.encode() + b"\n")

    def _checksums(self, path: str) -> tuple[list[str] | None, str]:
        """(the sha256s its checksum file accepts, newest first, or None for a file written before
        checksums were; the sha256 of its bytes now)."""
        with self.fs.open_input_stream(path) as f:
            actual = hashlib.sha256(f.readall()).hexdigest()
        try:
            with self.fs.open_input_stream(path + CHECKSUM_SUFFIX) as f:
                return f.readall().decode("ascii", "replace").split(), actual
        except FileNotFoundError:
            return None, actual

    def _read_part(self, directory: str, dataset: str) -> tuple[pa.Table | None, str | None]:
        """The partition's rows and the sha256 of its file (None, None: no file)."""
        path = f"{directory}/{PART_FILE}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None, None
        recorded, actual = self._checksums(path)
        if recorded is not None and actual not in recorded:  # never merged into the new file: that would launder it
            log.warning("lake file %s was changed outside the pipeline (sha256 %s, recorded %s): its rows are "
                        "dropped; `govreports reparse` rebuilds them from the raw zone", path, actual, recorded[:1])
            return None, None
        return self._read_file(path, dataset), actual

    def _read_file(self, path: str, dataset: str) -> pa.Table:
        """A partition file in the dataset's current schema. A date is read as text and parsed: a FORMAT 2
        file holds it as an ISO string, which older versions did not check (2024-02-30 becomes null)."""
        schema = SCHEMAS[dataset]
        as_text = pa.schema([f.with_type(pa.string()) if pa.types.is_date(f.type) else f for f in schema])
        table = pq.read_table(path, filesystem=self.fs, schema=as_text)
        for i, f in enumerate(schema):
            if pa.types.is_date(f.type):
                day = pc.strptime(table[i], "%Y-%m-%d", "s", error_is_null=True)  # 02-30 reads as 03-02:
                real = pc.equal(pc.strftime(day, "%Y-%m-%d"), table[i])  # a real day prints as it was written
                table = table.set_column(i, f, pc.if_else(real, day, None).cast(f.type))
        return table

    def _put(self, path: str, data: bytes | pa.Buffer) -> None:
        """Write `path` whole: beside it, then moved over it (a rename: atomic on a local filesystem)."""
        tmp = f"{path.rsplit('/', 1)[0]}/.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, path)

    def _write_part(self, directory: str, table: pa.Table, previous: str | None) -> None:
        self.fs.create_dir(directory, recursive=True)
        sink = pa.BufferOutputStream()
        # No dictionary pages: a partition holds one agency-year (~200 rows), too few to repeat values
        # much; without them the file is smaller and written faster (BENCHMARKS.md, Scale, Round 3).
        pq.write_table(table, sink, compression=COMPRESSION, use_dictionary=False)
        data = sink.getvalue()
        path = f"{directory}/{PART_FILE}"
        # The checksum first, accepting the file it replaces too: a kill between the two moves leaves
        # the old file, still accepted (and the report being written not loaded: reports go last).
        accepted = [hashlib.sha256(data).hexdigest(), *([previous] if previous else [])]
        self._put(path + CHECKSUM_SUFFIX, "\n".join(accepted).encode())
        self._put(path, data)

    def write(self, bundles: Iterable[ReportBundle],
              on_file: Callable[[str], None] | None = None) -> WriteSummary:
        """Load report versions, replacing any earlier load of the same report_id. `on_file(path)` is
        called after each partition file is in place (progress, and the crash tests' checkpoint)."""
        by_partition: dict[tuple[int, str], list[ReportBundle]] = defaultdict(list)
        # A new lake is marked before its first partition exists, so whoever sees a partition sees the mark.
        new = self.fs.get_file_info(f"{self.root}/reports").type == pafs.FileType.NotFound
        if new and not self.is_current_format():
            self.mark_format()
        for b in bundles:
            year = UNKNOWN_YEAR if pd.isna(b.report.get("year")) else int(b.report["year"])
            partition_dir(self.root, "facts", year, b.report.get("agency_id"))  # validate before anything is written
            by_partition[(year, b.report["agency_id"])].append(b)
        # Each dataset of the whole batch goes to Arrow once (pandas -> Arrow per partition cost more
        # than the write itself); partitions then take their rows by report_id.
        ordered = [b for key in sorted(by_partition) for b in by_partition[key]]
        batch = {
            "reports": _rows_table("reports", [tuple(b.report.get(k) for k in REPORT_COLUMNS) for b in ordered],
                                   REPORT_COLUMNS),
            "facts": _rows_table("facts", [r for b in ordered for r in b.fact_rows], FACT_COLUMNS),
            "checks": _rows_table("checks", [(b.report.get("agency"), *r) for b in ordered for r in b.check_rows],
                                  {"agency": "string", **CHECK_COLUMNS}),
        }
        for (year, agency_id), group in sorted(by_partition.items()):
            ids = pa.array([b.report["report_id"] for b in group], pa.string())
            for dataset in ("facts", "checks", "reports"):  # reports last: it says what is loaded
                directory = partition_dir(self.root, dataset, year, agency_id)
                table = batch[dataset].filter(pc.is_in(batch[dataset]["report_id"], value_set=ids))
                old, previous = self._read_part(directory, dataset)
                if old is not None:
                    keep = pc.invert(pc.is_in(old["report_id"], value_set=ids))
                    table = pa.concat_tables([old.filter(keep), table])
                self._write_part(directory, table, previous)
                if on_file is not None:
                    on_file(directory)
        return WriteSummary(len(ordered), batch["facts"].num_rows, batch["checks"].num_rows, set(by_partition))

    def _for_duckdb(self, path: str) -> str:
        """A path as DuckDB reads it: local as it is, else with its scheme (pyarrow's paths drop it)."""
        return path if isinstance(self.fs, pafs.LocalFileSystem) else f"{self.fs.type_name}://{path}"

    def glob(self, dataset: str) -> str:
        """The glob of a dataset's files, for DuckDB's read_parquet."""
        return self._for_duckdb(f"{self.root}/{dataset}/year=*/agency_id=*/{PART_FILE}")

    def _paths(self, dataset: str) -> list[str]:
        """Every partition file of a dataset, sorted, as paths in self.fs."""
        selector = pafs.FileSelector(f"{self.root}/{dataset}", allow_not_found=True, recursive=True)
        paths = sorted(info.path for info in self.fs.get_file_info(selector) if info.base_name == PART_FILE)
        old = next((p for p in paths if p.split("/")[-2].startswith("agency=")), None)
        if old is not None:  # the layout before partitions were named agency_id=
            raise LakeError(f"the lake at {self.root} was written by an older version ({old}): run "
                            "`govreports reparse` once to rebuild it from the raw zone (on an object store, "
                            "delete the lake first)")
        return paths

    def files(self, dataset: str) -> list[str]:
        """Every partition file of a dataset, sorted, as DuckDB reads them."""
        return [self._for_duckdb(path) for path in self._paths(dataset)]

    def verified(self) -> tuple[dict[str, list[str]], list[Tampered]]:
        """Every dataset's partition files as DuckDB reads them, less the partitions (year, agency) that
        hold a file whose bytes differ from the checksum recorded when it was written; and those files.
        A whole partition goes, in every dataset, so that no report is loaded without its facts."""
        every = [(dataset, path) for dataset in SCHEMAS for path in self._paths(dataset)]
        with ThreadPoolExecutor(max_workers=4) as pool:  # threads hide an object store's latency
            sums = list(pool.map(self._checksums, [path for _, path in every]))
        if unrecorded := sum(recorded is None for recorded, _ in sums):
            log.warning("%d lake files carry no checksum (written by an older version): loaded unverified; "
                        "`govreports reparse` records them", unrecorded)
        tampered = [Tampered(dataset, *_partition(path), self._for_duckdb(path), recorded[0] if recorded else "",
                             actual)
                    for (dataset, path), (recorded, actual) in zip(every, sums, strict=True)
                    if recorded is not None and actual not in recorded]
        for t in tampered:
            log.warning("lake file %s was changed outside the pipeline (sha256 %s, recorded %s): partition "
                        "year=%d agency_id=%s not loaded", t.path, t.actual_sha256, t.recorded_sha256, t.year,
                        t.agency_id)
        skip = {(t.year, t.agency_id) for t in tampered}
        files: dict[str, list[str]] = {dataset: [] for dataset in SCHEMAS}
        for dataset, path in every:
            if _partition(path) not in skip:
                files[dataset].append(self._for_duckdb(path))
        return files, tampered

    def report_ids(self) -> set[str]:
        """Every report version the lake holds (what the parse stage may skip). File by file: a pyarrow
        dataset over the whole lake grows with the lake's files (BENCHMARKS.md, Scale, Round 3)."""

        def ids(path: str) -> list[str]:
            with self.fs.open_input_file(path) as f:
                return pq.ParquetFile(f).read(columns=["report_id"], use_threads=False).column(0).to_pylist()

        out: set[str] = set()
        with ThreadPoolExecutor(max_workers=4) as pool:  # threads hide an object store's latency
            for chunk in pool.map(ids, self._paths("reports")):
                out.update(chunk)
        return out

    def read(self, dataset: str) -> pd.DataFrame:
        """A whole dataset with its partition columns (year, agency_id), for tests and small lakes."""
        frames = []
        for path in self._paths(dataset):
            year, agency_id = _partition(path)
            df = self._read_file(path, dataset).to_pandas()
            df.insert(0, "agency_id", agency_id)
            df.insert(0, "year", year)
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["year", "agency_id", *SCHEMAS[dataset].names])
        return pd.concat(frames, ignore_index=True)

"""The Parquet lake: facts, checks and reports as three Delta Lake tables (`deltalake`), by year.

Every row carries its year and agency_id: that is the lake's logical layout and what a reader sees. On disk
each dataset is a Delta table partitioned by year, `<root>/<dataset>/year=<y>/part-<uuid>.parquet`, each file
holding many agencies' reports (one file per agency and year made millions of files at national scale), and
`<root>/<dataset>/_delta_log/` records which files make each version. Writing is two steps:
- `stage` writes a batch's rows to new files (one per dataset and year), not yet part of any version: parse
  workers stage in parallel, and `merge` turns many staged files into one per dataset and year;
- `commit` makes staged files visible, one Delta commit per dataset: facts, checks, then reports (the reports
  say what is loaded; a reader takes the facts and checks of the commit the reports name, `snapshot`). A
  commit replaces the rows of report ids already loaded (never a duplicate), or, for `reparse`, every row.
Every version is kept (Delta's time travel; nothing is vacuumed), and every data file's sha256 is recorded
in `<root>/<dataset>/_checksums/` when it is staged: a file whose bytes differ was changed outside the
pipeline (`verify`). Which version of a report is current is no property of the version: the warehouse
decides it at each build, from the fetch log (load/views/10_current.sql).
The root may be a local path or a URL that pyarrow's filesystems understand (file://, s3://).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

from govreports.data.schema import CHECKS, FACTS, REPORTS, Column, pandas_types
from govreports.transform.frame import CHECK_COLUMNS, FACT_COLUMNS

COMPRESSION = "zstd"
PARTITION = "year"  # the tables' partition column (int; 0 = not known); agency_id is a column of every file
UNKNOWN_YEAR = 0
AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DATASETS = ("facts", "checks", "reports")  # the order of a commit: reports last, it says what is loaded
CHECKSUMS = "_checksums"  # Delta leaves alone what starts with an underscore
COMMIT_KEY = "govreports_commit"  # in each Delta commit's metadata: the id shared by one commit's three tables
DECIDED_AT_BUILD = ("is_current",)  # reports' columns that the warehouse computes, never stored
REPORT_COLUMNS: dict[str, str] = pandas_types(REPORTS)  # one row per report version (data/schema.py)
# Rows per file when files are merged: about 1 million fact rows is 10-20 MB of Parquet, few enough files
# for an object store, and small enough that a merge holds little in memory.
MERGE_ROWS = 1_000_000
ROW_GROUP = 128_000  # rows per row group of a merged file, about what DuckDB scans per thread

log = logging.getLogger(__name__)


def _stored(*columns: Column) -> pa.Schema:
    """A dataset's file schema: the year lives in the path, the build's columns in the warehouse."""
    return pa.schema([pa.field(c.name, c.arrow) for c in columns if c.name not in (PARTITION, *DECIDED_AT_BUILD)])


def _agency_first(schema: pa.Schema) -> pa.Schema:
    """agency_id as the first column of every dataset (files are sorted by it)."""
    rest = [f for f in schema if f.name != "agency_id"]
    return pa.schema([pa.field("agency_id", pa.string()), *rest])


SCHEMAS: dict[str, pa.Schema] = {  # the lake's three datasets' files, declared once
    "facts": _agency_first(_stored(*FACTS)),
    "checks": _agency_first(_stored(Column("agency", "str", "the report's agency name, as in facts"), *CHECKS)),
    "reports": _agency_first(_stored(*REPORTS)),
}
# The tables' schemas: the files' columns and the year.
TABLE_SCHEMAS = {d: pa.schema([pa.field(PARTITION, pa.int64()), *s]) for d, s in SCHEMAS.items()}


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


class StagedFile(NamedTuple):
    """A data file written but not yet committed: what a parse worker hands back (small: no rows)."""

    dataset: str
    year: int
    path: str  # relative to the dataset's table, year=<y>/part-<uuid>.parquet
    size: int
    rows: int
    sha256: str


class Tampered(NamedTuple):
    """A data file whose bytes are not those written by the pipeline."""

    dataset: str
    year: int
    unit: str  # the merge that wrote it: its files of that year hold the same reports' rows in every dataset
    path: str
    recorded_sha256: str
    actual_sha256: str


class WriteSummary(NamedTuple):
    reports: int
    facts: int
    checks: int
    partitions: set[tuple[int, str]]  # (year, agency_id)


class Snapshot(NamedTuple):
    """One consistent state of the lake: each table's version, and its files as DuckDB and pyarrow read them."""

    versions: dict[str, int]
    files: dict[str, list[str]]


def check_partition(year: object, agency_id: object) -> None:
    """Ids are checked before anything is written: no agency id (/, .., NUL, control characters) can leave
    the lake or make a path, and a year is a year."""
    if not isinstance(agency_id, str) or not AGENCY_ID.fullmatch(agency_id) or ".." in agency_id:
        raise LakeError(f"agency id {agency_id!r} is not a safe ASCII id")
    if not isinstance(year, int) or not (year == UNKNOWN_YEAR or 1990 <= year <= 2100):
        raise LakeError(f"year {year!r} out of range")


def _rows_table(dataset: str, rows: list[tuple], columns: Sequence[str]) -> pa.Table:
    """Row tuples in `columns` order -> the dataset's file schema."""
    schema = SCHEMAS[dataset]
    by_name = dict(zip(columns, zip(*rows, strict=True), strict=True)) if rows else {}
    # A date arrives as an ISO string (extract/page.py validates it): Arrow parses it in the cast.
    arrays = [pa.array(by_name.get(f.name, ()), pa.string() if pa.types.is_date(f.type) else f.type,
                       from_pandas=True).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _year(report: Mapping) -> int:
    return UNKNOWN_YEAR if pd.isna(report.get("year")) else int(report["year"])


class Lake:
    def __init__(self, root: str, storage_options: Mapping[str, str] | None = None) -> None:
        """`root`: a local path or a filesystem URL. `storage_options`: for an object store, what both
        pyarrow and deltalake need (endpoint_url, access_key, secret_key, region; see docs/scaling.md)."""
        self.options = dict(storage_options or {})
        if "://" in str(root) and not str(root).startswith("file://"):
            self.uri = str(root).rstrip("/")
            url = urlparse(self.uri)
            self.fs: pafs.FileSystem = (_s3(self.options) if url.scheme == "s3"
                                        else pafs.FileSystem.from_uri(self.uri)[0])
            self.root = f"{url.netloc}{url.path}".rstrip("/")
        else:
            path = str(root)[len("file://"):] if str(root).startswith("file://") else str(root)
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(path)
            self.uri = self.root
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    # -- where things are ----------------------------------------------------------------------------------

    def table_uri(self, dataset: str) -> str:
        return f"{self.uri}/{dataset}"

    def _table_path(self, dataset: str) -> str:
        return f"{self.root}/{dataset}"

    def _for_readers(self, dataset: str, relative: str) -> str:
        """A data file as DuckDB and pyarrow read it: local as a path, else as a URL."""
        return f"{self.table_uri(dataset)}/{relative}"

    def _table(self, dataset: str, version: int | None = None) -> DeltaTable | None:
        try:
            table = DeltaTable(self.table_uri(dataset), storage_options=self.options or None)
        except TableNotFoundError:
            if self.older_layout():
                raise LakeError(f"the lake at {self.uri} was written by an older version (a file per agency and "
                                "year): run `govreports reparse` once to rebuild it from the raw zone") from None
            return None
        if version is not None and version != table.version():
            table.load_as_version(version)
        return table

    def older_layout(self) -> bool:
        """The lake holds files of the layout before Delta tables (a part.parquet per agency and year)."""
        selector = pafs.FileSelector(self._table_path("reports"), recursive=True, allow_not_found=True)
        return any(i.base_name == "part.parquet" for i in self.fs.get_file_info(selector))

    def dataset(self, dataset: str, files: Sequence[str]) -> ds.Dataset:
        """These data files (as `snapshot` names them) as a pyarrow dataset with the year."""
        prefix = len(self.table_uri(dataset)) + 1
        base = self._table_path(dataset)
        return ds.dataset([f"{base}/{uri[prefix:]}" for uri in files], format="parquet", filesystem=self.fs,
                          schema=TABLE_SCHEMAS[dataset], partition_base_dir=base,
                          partitioning=ds.partitioning(pa.schema([(PARTITION, pa.int64())]), flavor="hive"))

    # -- writing -------------------------------------------------------------------------------------------

    def _write_file(self, dataset: str, year: int, tables: Iterable[pa.Table], unit: str | None = None) -> StagedFile:
        """One data file from these tables (each sorted by agency and report), written as they come, in row
        groups of about ROW_GROUP rows; its sha256 recorded before it can be committed. `unit`: the merge it
        comes from, in its name (a file changed outside the pipeline takes its unit's files of that year, in
        every dataset, out of the build: `verify`)."""
        sink = pa.BufferOutputStream()
        rows = 0
        # Dictionary pages pay off in a merged file (values repeat across thousands of reports), not in a
        # batch's (BENCHMARKS.md, Scale, Round 3).
        with pq.ParquetWriter(sink, SCHEMAS[dataset], compression=COMPRESSION, use_dictionary=unit is not None) as out:
            pending: list[pa.Table] = []
            held = 0  # rows in pending
            for table in tables:
                pending.append(table)
                held += table.num_rows
                if held >= ROW_GROUP:
                    out.write_table(pa.concat_tables(pending), row_group_size=2 * ROW_GROUP)
                    rows, pending, held = rows + held, [], 0
            if pending or not rows:
                out.write_table(pa.concat_tables(pending) if pending else SCHEMAS[dataset].empty_table())
                rows += held
        data = sink.getvalue()
        name = f"part-{unit or uuid.uuid4().hex[:12]}-{uuid.uuid4().hex[:12]}.parquet"
        relative = f"{PARTITION}={year}/{name}"
        sha = hashlib.sha256(data).hexdigest()
        directory = f"{self._table_path(dataset)}/{PARTITION}={year}"
        sums = f"{self._table_path(dataset)}/{CHECKSUMS}"
        if self.local:  # an object store has no folders: pyarrow would PUT a marker object for each
            self.fs.create_dir(directory, recursive=True)
            self.fs.create_dir(sums, recursive=True)
        with self.fs.open_output_stream(f"{sums}/{name}.sha256") as f:
            f.write(sha.encode())
        with self.fs.open_output_stream(f"{directory}/{name}") as f:
            f.write(data)
        return StagedFile(dataset, year, relative, len(data), rows, sha)

    def stage(self, bundles: Iterable[ReportBundle],
              on_file: Callable[[str], None] | None = None) -> tuple[list[StagedFile], WriteSummary]:
        """Write report versions to new files, one per dataset and year, not yet visible to readers."""
        bundles = list(bundles)
        partitions = set()
        for b in bundles:
            check_partition(_year(b.report), b.report.get("agency_id"))
            partitions.add((_year(b.report), b.report["agency_id"]))
        years = [_year(b.report) for b in bundles]
        batch = {
            "reports": _rows_table("reports", [tuple(b.report.get(k) for k in REPORT_COLUMNS) for b in bundles],
                                   list(REPORT_COLUMNS)),
            "facts": _rows_table("facts", [(b.report["agency_id"], *r) for b in bundles for r in b.fact_rows],
                                 ["agency_id", *FACT_COLUMNS]),
            "checks": _rows_table("checks", [(b.report["agency_id"], b.report.get("agency"), *r)
                                             for b in bundles for r in b.check_rows],
                                  ["agency_id", "agency", *CHECK_COLUMNS]),
        }
        row_years = {"reports": years,
                     "facts": [y for b, y in zip(bundles, years, strict=True) for _ in b.fact_rows],
                     "checks": [y for b, y in zip(bundles, years, strict=True) for _ in b.check_rows]}
        staged = []
        for dataset in DATASETS:
            year_of_row = pa.array(row_years[dataset], pa.int64())
            for year in sorted(set(row_years[dataset])):
                part = batch[dataset].filter(pc.equal(year_of_row, year))
                part = part.sort_by([("agency_id", "ascending"), ("report_id", "ascending")])
                staged.append(self._write_file(dataset, year, [part]))
                if on_file is not None:
                    on_file(staged[-1].path)
        summary = WriteSummary(len(bundles), batch["facts"].num_rows, batch["checks"].num_rows, partitions)
        return staged, summary

    def _read_relative(self, dataset: str, relative: str) -> pa.Table:
        with self.fs.open_input_file(f"{self._table_path(dataset)}/{relative}") as f:
            return pq.read_table(f, schema=SCHEMAS[dataset])

    def _delete(self, dataset: str, relative: str) -> None:
        base, name = self._table_path(dataset), relative.rsplit("/", 1)[-1]
        for path in (f"{base}/{relative}", f"{base}/{CHECKSUMS}/{name}.sha256"):
            try:
                self.fs.delete_file(path)
            except FileNotFoundError:
                pass

    def merge(self, staged: Sequence[StagedFile]) -> list[StagedFile]:
        """Staged files -> fewer staged files, one unit: those of one dataset and year are rewritten into files
        of up to MERGE_ROWS rows, and the small ones deleted (they were never committed)."""
        groups: dict[tuple[str, int], list[StagedFile]] = defaultdict(list)
        for s in staged:
            groups[s.dataset, s.year].append(s)
        unit = uuid.uuid4().hex[:12]
        out = []
        for (dataset, year), files in groups.items():
            chunk: list[StagedFile] = []
            for s in files:  # files of up to MERGE_ROWS rows, read one small file at a time
                chunk.append(s)
                if sum(c.rows for c in chunk) >= MERGE_ROWS or s is files[-1]:
                    out.append(self._write_file(dataset, year, (self._read_relative(dataset, c.path) for c in chunk),
                                                unit))
                    chunk = []
            for s in files:
                self._delete(dataset, s.path)
        pa.default_memory_pool().release_unused()  # the flow merges all run long: give the buffers back
        return out

    def recover(self) -> None:
        """Undo what a killed commit left: facts or checks committed without the reports of their commit are
        restored to the version the reports name (the rows were never visible to a reader)."""
        reports = self._table("reports")
        last = _commit_id(reports) if reports is not None else None  # None: the tables as created, empty
        for dataset in ("facts", "checks"):
            table = self._table(dataset)
            if table is None or _commit_id(table) == last:
                continue
            version = _version_of(table, last)
            log.warning("the lake's %s hold a commit whose reports were never committed (a killed run): "
                        "restored to version %s", dataset, version)
            table.restore(version, commit_properties=CommitProperties(custom_metadata={COMMIT_KEY: last}))

    def commit(self, staged: Sequence[StagedFile], replace_all: bool = False, known_new: bool = False,
               on_commit: Callable[[str], None] | None = None) -> dict[str, int]:
        """Make staged files visible: one Delta commit per dataset, reports last, all three under one commit id.
        Rows of report ids the lake already holds are replaced (their files rewritten without them), unless
        `known_new` says none are there. `replace_all`: the staged files become the whole lake (reparse).
        `on_commit(dataset)` is called after each table's commit (the crash tests' checkpoint). Returns each
        table's new version."""
        self.recover()
        commit = uuid.uuid4().hex
        replaced = set() if replace_all or known_new else self._staged_ids(staged) & self.report_ids()
        versions = {}
        for dataset in DATASETS:
            mine = [s for s in staged if s.dataset == dataset]
            actions: list[AddAction | RemoveAction] = [_add(s) for s in mine]
            if replaced:
                actions += self._without(dataset, replaced)
            versions[dataset] = self._commit(dataset, actions, commit, replace_all)
            if on_commit is not None:
                on_commit(dataset)
        return versions

    def _staged_ids(self, staged: Sequence[StagedFile]) -> set[str]:
        ids: set[str] = set()
        for s in staged:
            if s.dataset == "reports":
                with self.fs.open_input_file(f"{self._table_path('reports')}/{s.path}") as f:
                    ids.update(pq.read_table(f, columns=["report_id"]).column(0).to_pylist())
        return ids

    def _commit(self, dataset: str, actions: list, commit: str, replace_all: bool) -> int:
        table = self._table(dataset)
        properties = CommitProperties(custom_metadata={COMMIT_KEY: commit})
        if table is None:
            table = DeltaTable.create(self.table_uri(dataset), TABLE_SCHEMAS[dataset], partition_by=[PARTITION],
                                      storage_options=self.options or None,
                                      configuration={"delta.enableExpiredLogCleanup": "false"})
        # Nothing of this dataset still makes a commit: every table's latest version carries the commit id.
        adds = [a for a in actions if isinstance(a, AddAction)]
        table.create_write_transaction(adds if replace_all else actions, mode="overwrite" if replace_all else "append",
                                       schema=TABLE_SCHEMAS[dataset], partition_by=[PARTITION],
                                       commit_properties=properties)
        table.update_incremental()  # the object does not see its own commit until it reads the log again
        return table.version()

    def _without(self, dataset: str, ids: set[str]) -> list[AddAction | RemoveAction]:
        """The files of the current version that hold rows of these report ids: removed, and rewritten
        without those rows (a reload of a report already loaded: rare, and it reads the whole table)."""
        table = self._table(dataset)
        if table is None:
            return []
        value_set = pa.array(sorted(ids), pa.string())
        actions: list[AddAction | RemoveAction] = []
        for path, year in _files_with_year(table):
            data = self._read_relative(dataset, path)
            hit = pc.is_in(data["report_id"], value_set=value_set)
            if not pc.any(hit).as_py():
                continue
            actions.append(RemoveAction(path=path, data_change=True, deletion_timestamp=int(time.time() * 1000),
                                        partition_values={PARTITION: str(year)}))
            keep = data.filter(pc.invert(hit))
            # A file changed outside the pipeline is dropped, not rewritten: a new file would carry its rows
            # under a checksum of ours (`reparse` rebuilds what it held).
            if keep.num_rows and not self.verify({dataset: [self._for_readers(dataset, path)]})[1]:
                actions.append(_add(self._write_file(dataset, year, [keep], _unit(path)[1])))
        return actions

    def write(self, bundles: Iterable[ReportBundle], on_file: Callable[[str], None] | None = None,
              replace_all: bool = False) -> WriteSummary:
        """Stage, merge and commit report versions in one go, replacing earlier loads of the same report ids.
        `on_file(name)` is called after each file is staged and each table committed."""
        staged, summary = self.stage(bundles, on_file)
        self.commit(self.merge(staged), replace_all=replace_all, on_commit=on_file)
        return summary

    def compact(self, at: int = 16, on_commit: Callable[[str], None] | None = None) -> int:
        """Merge the small loads of each year, once a year has `at` of them (nightly loads add a few files each):
        the files of those loads, in every dataset, into files of up to MERGE_ROWS rows, committed as a change
        of files, not of rows (dataChange false: a refresh skips it). Files that fail their checksum are left as
        they are. Returns the number of files merged away."""
        self.recover()
        snapshot = self.snapshot()
        units: dict[int, set[str]] = defaultdict(set)  # year -> its loads (from the files' names: nothing read)
        for uri in snapshot.files["reports"]:
            year, unit = _unit(uri)
            units[year].add(unit)
        merge = {year: found for year, found in units.items() if len(found) >= at}
        chosen = {d: [u for u in snapshot.files[d] if _unit(u)[1] in merge.get(_unit(u)[0], ())] for d in DATASETS}
        checked, tampered = self.verify(chosen)  # a changed file is never merged into a new one: that would launder it
        for t in tampered:
            merge[t.year].discard(t.unit)
        merge = {year: found for year, found in merge.items() if len(found) >= 2}
        checked = {d: [u for u in paths if _unit(u)[1] in merge.get(_unit(u)[0], ())] for d, paths in checked.items()}
        if not merge:
            return 0
        commit, merged = uuid.uuid4().hex, 0
        units_of = {year: uuid.uuid4().hex[:12] for year in merge}  # one per year, the same in every dataset
        for dataset in DATASETS:
            prefix = len(self.table_uri(dataset)) + 1
            actions: list[AddAction | RemoveAction] = []
            by_year: dict[int, list[str]] = defaultdict(list)
            for uri in checked[dataset]:
                by_year[_unit(uri)[0]].append(uri[prefix:])
            counts = _records(self._table(dataset))
            for year, paths in by_year.items():
                rows = [counts.get(p, 0) for p in paths]
                start = 0
                while start < len(paths):
                    end, total = start, 0
                    while end < len(paths) and (total < MERGE_ROWS or end == start):
                        total += rows[end]
                        end += 1
                    new = self._write_file(dataset, year, (self._read_relative(dataset, p) for p in paths[start:end]),
                                           units_of[year])
                    actions.append(_add(new, data_change=False))
                    start = end
                actions += [RemoveAction(path=p, data_change=False, deletion_timestamp=int(time.time() * 1000),
                                         partition_values={PARTITION: str(year)}) for p in paths]
                merged += len(paths)
            self._commit(dataset, actions, commit, replace_all=False)
            if on_commit is not None:
                on_commit(dataset)
        return merged

    # -- reading -------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest consistent state: the reports table's latest version, and the facts and checks of the
        same commit (never a later one that a running commit has not finished)."""
        reports = self._table("reports")
        if reports is None:
            return Snapshot({}, {d: [] for d in DATASETS})
        commit = _commit_id(reports)
        tables = {"reports": reports}
        for dataset in ("facts", "checks"):
            table = self._table(dataset)
            if table is not None and _commit_id(table) != commit:
                table.load_as_version(_version_of(table, commit))
            tables[dataset] = table
        return Snapshot({d: t.version() for d, t in tables.items() if t is not None},
                        {d: sorted(self._for_readers(d, p) for p, _ in _files_with_year(t)) if t is not None else []
                         for d, t in tables.items()})

    def changes(self, since: Mapping[str, int], to: Snapshot) -> dict[str, list[str]] | None:
        """The files added to each table from the versions `since` to the snapshot `to`, as readers read
        them, when those commits only added rows (loads of new versions; merges that move rows between files
        without changing them are skipped). None when any commit removed rows (a reload, a reparse, a
        restore) or the log no longer holds them: the warehouse is then rebuilt whole."""
        added: dict[str, list[str]] = {}
        for dataset in DATASETS:
            start, end = since.get(dataset), to.versions.get(dataset)
            if start is None or end is None or start > end:
                return None
            added[dataset] = []
            for version in range(start + 1, end + 1):
                actions = self._log_entry(dataset, version)
                if actions is None:
                    return None
                for action in actions:
                    if "remove" in action and action["remove"].get("dataChange", True):
                        return None
                    if "add" in action and action["add"].get("dataChange", True):
                        added[dataset].append(self._for_readers(dataset, action["add"]["path"]))
        return added

    def _log_entry(self, dataset: str, version: int) -> list[dict] | None:
        """A commit's actions, from its file in the Delta log (the protocol's JSON lines)."""
        try:
            with self.fs.open_input_stream(f"{self._table_path(dataset)}/_delta_log/{version:020d}.json") as f:
                return [json.loads(line) for line in f.readall().decode().splitlines() if line.strip()]
        except FileNotFoundError:
            return None

    def verify(self, files: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], list[Tampered]]:
        """These data files (as `snapshot` names them), less those whose bytes differ from the sha256
        recorded when they were written, and those. The sums are read in threads (an object store's latency)."""
        every = [(d, f) for d, paths in files.items() for f in paths]

        def check(item: tuple[str, str]) -> tuple[str | None, str]:
            dataset, uri = item
            relative = uri[len(self.table_uri(dataset)) + 1:]
            path = f"{self._table_path(dataset)}/{relative}"
            with self.fs.open_input_stream(path) as f:
                actual = hashlib.sha256(f.readall()).hexdigest()
            try:
                with self.fs.open_input_stream(f"{self._table_path(dataset)}/{CHECKSUMS}/"
                                               f"{relative.rsplit('/', 1)[-1]}.sha256") as f:
                    return f.readall().decode("ascii", "replace").strip(), actual
            except FileNotFoundError:
                return None, actual

        with ThreadPoolExecutor(max_workers=4) as pool:
            sums = list(pool.map(check, every))
        if unrecorded := sum(recorded is None for recorded, _ in sums):
            log.warning("%d lake files carry no checksum (written outside the pipeline?): loaded unverified",
                        unrecorded)
        tampered = [Tampered(dataset, *_unit(uri), uri, recorded, actual)
                    for (dataset, uri), (recorded, actual) in zip(every, sums, strict=True)
                    if recorded is not None and recorded != actual]
        for t in tampered:
            log.warning("lake file %s was changed outside the pipeline (sha256 %s, recorded %s): its load's files of "
                        "year %d are not loaded; `govreports reparse` rebuilds them from the raw zone", t.path,
                        t.actual_sha256, t.recorded_sha256, t.year)
        out = {(t.year, t.unit) for t in tampered}  # a report is never loaded without its facts and checks
        return {d: [f for f in paths if _unit(f) not in out] for d, paths in files.items()}, tampered

    def sweep(self) -> int:
        """Delete the data files that no version of their table ever committed, with their checksums: what a run
        killed between staging and committing left (never read, only disk). Only with the run lock held: a
        running load's staged files look the same. Returns how many data files were deleted."""
        if self.older_layout():  # reparse moves such a lake aside whole; nothing in it is a staged file
            return 0
        removed = 0
        for dataset in DATASETS:
            base = self._table_path(dataset)
            committed: set[str] = set()  # no table yet: a first run killed before its first commit
            logs = self.fs.get_file_info(pafs.FileSelector(f"{base}/_delta_log", allow_not_found=True))
            for info in logs:  # every commit: nothing is vacuumed, so a file of any version is still read
                if info.base_name.endswith(".json") and info.base_name[:-5].isdigit():
                    for action in self._log_entry(dataset, int(info.base_name[:-5])) or ():
                        if "add" in action:
                            committed.add(unquote(action["add"]["path"]))
            selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
            for info in self.fs.get_file_info(selector):
                relative = info.path[len(base) + 1:]
                if (info.type == pafs.FileType.File and relative.startswith(f"{PARTITION}=")
                        and relative.endswith(".parquet") and relative not in committed):
                    self._delete(dataset, relative)
                    removed += 1
        if removed:
            log.warning("deleted %d lake files that a killed run staged and never committed", removed)
        return removed

    def files(self, dataset: str) -> list[str]:
        """The data files of a dataset's latest consistent version."""
        return self.snapshot().files[dataset]

    def report_ids(self) -> set[str]:
        """Every report version the lake holds (what the parse stage may skip)."""
        table = self._table("reports")
        if table is None:
            return set()
        return set(table.to_pyarrow_dataset().to_table(columns=["report_id"]).column(0).to_pylist())

    def read(self, dataset: str) -> pd.DataFrame:
        """A whole dataset (year first, then agency_id), for tests and small lakes."""
        table = self._table(dataset)
        if table is None:
            return pd.DataFrame(columns=[f.name for f in TABLE_SCHEMAS[dataset]])
        data = table.to_pyarrow_dataset().to_table()
        return data.select([f.name for f in TABLE_SCHEMAS[dataset]]).to_pandas()

    def file_count(self) -> int:
        """Every file under the lake's root (data, checksums, Delta logs): what an object store lists."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return sum(1 for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)


def _unit(uri: str) -> tuple[int, str]:
    """(year, unit) of a data file, from its path: year=<y>/part-<unit>-<n>.parquet."""
    directory, name = uri.rsplit("/", 2)[-2:]
    return int(directory.split("=", 1)[1]), name.split("-")[1]


def _s3(options: Mapping[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 client with the options deltalake takes (its names: AWS_ENDPOINT_URL, ...)."""
    endpoint = options.get("AWS_ENDPOINT_URL")
    return pafs.S3FileSystem(access_key=options.get("AWS_ACCESS_KEY_ID"),
                             secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
                             region=options.get("AWS_REGION", "us-east-1"),
                             endpoint_override=urlparse(endpoint).netloc if endpoint else None,
                             scheme=urlparse(endpoint).scheme if endpoint else "https")


def _add(s: StagedFile, data_change: bool = True) -> AddAction:
    return AddAction(path=s.path, size=s.size, partition_values={PARTITION: str(s.year)},
                     modification_time=int(time.time() * 1000), data_change=data_change,
                     stats=json.dumps({"numRecords": s.rows}))


def _records(table: DeltaTable | None) -> dict[str, int]:
    """Rows per data file of the table's version, from the log (each add's numRecords)."""
    if table is None:
        return {}
    actions = pa.table(table.get_add_actions(flatten=True))
    return dict(zip(actions.column("path").to_pylist(), actions.column("num_records").to_pylist(), strict=True))


def _files_with_year(table: DeltaTable) -> list[tuple[str, int]]:
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = actions.column("path").to_pylist()
    column = f"partition.{PARTITION}"
    years = actions.column(column).to_pylist() if column in actions.column_names else [UNKNOWN_YEAR] * len(paths)
    return list(zip(paths, (int(y) for y in years), strict=True))


def _commit_id(table: DeltaTable) -> str | None:
    """The govreports commit id of the table's latest version (None: a version no commit of ours made)."""
    return next((h.get(COMMIT_KEY) for h in table.history(1)), None)


def _version_of(table: DeltaTable, commit: str | None) -> int:
    """The latest version of the table made by this commit id (or by a restore to it)."""
    for entry in table.history():
        if entry.get(COMMIT_KEY) == commit:
            return int(entry["version"])
    raise LakeError(f"the lake's {table.table_uri} has no version of commit {commit}: the lake is damaged; "
                    "`govreports reparse` rebuilds it from the raw zone")

"""The fetch log: one Parquet row per fetch attempt (and per link recorded but not fetched).

Append-only: every `append` writes one new zstd Parquet file, whole (a temporary name, then a move),
and `compact` merges the files into one. The log is the history of every URL: which bodies it had,
when, and which one is current. Reads are DuckDB queries over the files; the log may live on any
pyarrow filesystem (local, file://, s3://).

Two attempts at the same microsecond are ordered as written: by file name (the time of writing),
then by row. Compaction keeps that order. A compaction stopped between writing the merged file and
deleting its inputs leaves some attempts twice; every read takes exact duplicates once.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from govreports.data.schema import FETCH_LOG, arrow_schema

__all__ = ["LOG_SCHEMA", "OUTCOMES", "SUCCESS_OUTCOMES", "FetchLog"]

LOG_SCHEMA = arrow_schema(FETCH_LOG)  # declared in govreports.data.schema

OUTCOMES = frozenset(
    {"new", "new_version", "unchanged", "not_modified", "fetched", "failed", "refused", "attachment", "image_only"}
)
# Attempts after which the URL's body is in the raw zone ("fetched": a body not yet classified).
SUCCESS_OUTCOMES = frozenset({"new", "new_version", "unchanged", "not_modified", "fetched"})

_INT_TYPES = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
_NAMES = LOG_SCHEMA.names
_COLUMNS = ", ".join(_NAMES)
_ANCHORS = ("etag", "last_modified", "sha256")  # what a conditional request or a sha256 comparison needs
_ROW_GROUP = 131_072
COMPACT_GROUP = 2000  # files merged at a time
_MERGED = "-compact-"  # in a merged file's name
MEMORY_LIMIT = "256MB"  # DuckDB's, reading the log

# `a` is the attempts with the file each came from and its row there: their order as written is
# (filename, file_row_number). Exact duplicates (a stopped compaction) give the same latest attempt and
# the same first and last sighting, so they need no special care here.
_SUCCESS = f"outcome IN ({', '.join(repr(o) for o in sorted(SUCCESS_OUTCOMES))})"
_ORDER = "(fetched_at, filename, file_row_number)"
_LATEST = f"""
SELECT UNNEST(arg_max({{{", ".join(f"'{c}': {c}" for c in _NAMES)}}}, {_ORDER})) FROM a
WHERE {_SUCCESS} AND ({" OR ".join(f"{c} <> ''" for c in _ANCHORS)})
GROUP BY url
"""
_VERSIONS_OF = f"""
WITH v AS (
    SELECT url, sha256,
           arg_max(agency_id, {_ORDER}) AS agency_id, arg_max("year", {_ORDER}) AS "year",
           arg_max(kind, {_ORDER}) AS kind, arg_max(link_agency, {_ORDER}) AS link_agency,
           arg_max(linked_from, {_ORDER}) AS linked_from,
           min(fetched_at) AS first_seen, max(fetched_at) AS last_seen, max({_ORDER}) AS _last
    FROM {{attempts}} WHERE {_SUCCESS} AND sha256 IS NOT NULL GROUP BY url, sha256
)
SELECT * EXCLUDE (_last), sha256 = arg_max(sha256, _last) OVER (PARTITION BY url) AS is_current
FROM v
"""
_VERSIONS = _VERSIONS_OF.format(attempts="a")
_VERSION_COLUMNS = ["url", "sha256", "agency_id", "year", "kind", "link_agency", "linked_from", "first_seen",
                    "last_seen", "is_current"]
_FRAME = f"SELECT {_COLUMNS} FROM a GROUP BY ALL ORDER BY fetched_at, min((filename, file_row_number))"
_ALL = f"SELECT {_COLUMNS} FROM a"  # in the order written (DuckDB keeps insertion order)


def _usable(rec: Mapping[str, Any]) -> bool:
    """A successful attempt that can anchor a conditional request or a sha256 comparison."""
    return rec.get("outcome") in SUCCESS_OUTCOMES and any(rec.get(k) for k in _ANCHORS)


def _when(value: Any) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


class Sightings(NamedTuple):
    """What the log says of the versions it stored after a time: a database that keeps each version's sightings
    adds those of each run instead of reading the whole log again (load/warehouse.py)."""

    versions: pd.DataFrame  # url, sha256, first_seen, last_seen, year, of the successful attempts after `after`
    after: datetime | None  # None: every attempt
    upto: datetime | None  # the log's latest attempt (None: an empty log)
    attempts: int  # every attempt in the log
    attempts_after: int  # those after `after`


class FetchLog:
    """Append-only Parquet log of fetch attempts under `root` (a local path or a pyarrow filesystem URL)."""

    def __init__(self, root: str | Path) -> None:
        self._fs, base = pafs.FileSystem.from_uri(str(root) if "://" in str(root) else str(Path(root).absolute()))
        self._base = base.rstrip("/")
        self.root = Path(self._base)
        self._latest: dict[str, tuple[Any, ...]] | None = None  # url -> latest usable attempt, on first use
        self._lock = threading.Lock()

    def _files(self) -> list[str]:
        """The log's files, in the order written (their names start with the time of writing)."""
        infos = self._fs.get_file_info(pafs.FileSelector(self._base, allow_not_found=True))
        return sorted(i.path for i in infos if i.base_name.endswith(".parquet") and not i.base_name.startswith("."))

    def _query(self, sql: str, files: Sequence[str], rows: int = _ROW_GROUP) -> pa.RecordBatchReader:
        """The result of `sql` over the attempts in `files` as table `a`. DuckDB reads local files
        itself (the leanest read); files on another filesystem are streamed to it through pyarrow."""
        # One thread and a memory limit beyond which DuckDB spills to a folder of its own (it removes it):
        # a million versions' aggregate otherwise takes 1.3 GB (BENCHMARKS.md).
        con = duckdb.connect(config={"threads": 1, "memory_limit": MEMORY_LIMIT,
                                     "temp_directory": f"{tempfile.gettempdir()}/govreports-log-{uuid.uuid4().hex}"})
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        if isinstance(self._fs, pafs.LocalFileSystem):
            paths = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.register("log_schema", LOG_SCHEMA.empty_table())  # the columns that every file may lack
            con.execute("CREATE VIEW a AS SELECT * FROM log_schema UNION ALL BY NAME SELECT * FROM "
                        f"read_parquet([{paths}], filename = true, file_row_number = true, union_by_name = true)")
        else:
            con.register("a", self._stream(files))
        relation = con.sql(sql)
        # duckdb 2 renamed fetch_record_batch (which 1.x has) to to_arrow_reader
        return (getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch)(rows)

    def _stream(self, files: Sequence[str]) -> pa.RecordBatchReader:
        """The attempts in `files` with the columns that DuckDB's read_parquet adds."""
        dataset = ds.dataset(files, schema=LOG_SCHEMA, format="parquet", filesystem=self._fs)
        schema = LOG_SCHEMA.append(pa.field("filename", pa.string())).append(pa.field("file_row_number", pa.int64()))

        def batches() -> Iterator[pa.RecordBatch]:
            for fragment in dataset.get_fragments():
                row = 0
                for batch in fragment.to_batches(schema=LOG_SCHEMA, batch_readahead=1, fragment_readahead=1):
                    yield pa.RecordBatch.from_arrays(
                        [*batch.columns, pa.array([fragment.path] * batch.num_rows, pa.string()),
                         pa.array(np.arange(row, row + batch.num_rows, dtype=np.int64))], schema=schema)
                    row += batch.num_rows

        return pa.RecordBatchReader.from_batches(schema, batches())

    @contextmanager
    def _publish(self, name: str) -> Iterator[Any]:
        """A stream for the new file `name`: written under a temporary name, then moved into place, so
        that a reader sees the whole file or none of it."""
        self._fs.create_dir(self._base, recursive=True)
        tmp = f"{self._base}/.{name}.tmp"
        try:
            with self._fs.open_output_stream(tmp) as out:
                yield out
            if isinstance(self._fs, pafs.LocalFileSystem):  # on disk before it has its name
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            self._fs.move(tmp, f"{self._base}/{name}")
        except BaseException:
            with suppress(OSError):
                self._fs.delete_file(tmp)
            raise

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write `records` as one new Parquet file. `fetched_at` defaults to now; unknown keys are an error."""
        if not records:
            return
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for rec in records:
            extra = set(rec) - set(_NAMES)
            if extra:
                raise ValueError(f"unknown fetch log fields: {sorted(extra)}")
            if rec.get("outcome") not in OUTCOMES:
                raise ValueError(f"unknown fetch log outcome: {rec.get('outcome')!r}")
            if not rec.get("url"):
                raise ValueError("a fetch log record needs a url")
            row = {name: rec.get(name) for name in _NAMES}
            row["fetched_at"] = _when(row["fetched_at"] or now)
            rows.append(row)
        table = pa.Table.from_pylist(rows, schema=LOG_SCHEMA)
        # Names sort by time of writing; the uuid keeps concurrent writers apart.
        with self._publish(f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.parquet") as out:
            pq.write_table(table, out, compression="zstd")
        with self._lock:
            if self._latest is not None:  # keep the map current: a later (or equal) attempt wins
                for row in filter(_usable, rows):
                    prev = self._latest.get(row["url"])
                    if prev is None or row["fetched_at"] >= _when(prev[_NAMES.index("fetched_at")]):
                        self._latest[row["url"]] = tuple(row.values())

    def last_success(self, url: str) -> Mapping[str, Any] | None:
        """The latest successful attempt for `url` that carries an etag, last_modified or sha256. The
        first call reads the log once for every URL; the object keeps that map, and its own appends."""
        with self._lock:
            if self._latest is None:
                files = self._files()
                table = self._query(_LATEST, files).read_all() if files else None
                columns = [c.to_pylist() for c in table.columns] if table is not None else [[]]
                self._latest = {row[0]: row for row in zip(*columns, strict=True)}
            rec = self._latest.get(url)
        return dict(zip(_NAMES, rec, strict=True)) if rec is not None else None

    def versions(self) -> pd.DataFrame:
        """One row per (url, sha256) ever stored, with when it was first and last seen, the agency_id,
        year, kind, link_agency and linked_from of its latest attempt that gave one, and whether it is the body of
        the URL's latest successful fetch."""
        files = self._files()
        if not files:
            return pd.DataFrame({c: pd.Series(dtype=bool if c == "is_current" else object) for c in _VERSION_COLUMNS})
        table = self._query(_VERSIONS + " ORDER BY url, first_seen, _last", files).read_all()
        return table.to_pandas(types_mapper=_INT_TYPES.get)[_VERSION_COLUMNS]

    def sightings(self, after: datetime | None = None) -> Sightings:
        """`versions()` of the attempts after `after` (first_seen, last_seen and year among those only), with
        the log's latest attempt and how many attempts it holds: the reader can tell whether anything was
        written since `after` that is not after it (a clock set back), and then read everything again."""
        columns = ["url", "sha256", "first_seen", "last_seen", "year"]
        files = self._files()
        if not files:
            return Sightings(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), after, None, 0, 0)
        since = "true" if after is None else f"fetched_at > TIMESTAMPTZ '{pd.Timestamp(after).isoformat()}'"
        upto, attempts, attempts_after = self._query(
            f"SELECT max(fetched_at), count(*), count(*) FILTER (WHERE {since}) FROM a", files).read_all().to_pylist(
        )[0].values()
        sql = _VERSIONS_OF.format(attempts=f"(SELECT * FROM a WHERE {since})")
        versions = self._query(sql, files).read_all().to_pandas(types_mapper=_INT_TYPES.get)[columns]
        return Sightings(versions, after, upto, attempts, attempts_after)

    def versions_by_agency(self, rows: int = 20_000) -> Iterator[pd.DataFrame]:
        """`versions()` in frames of `rows` rows, ordered by agency_id (then url): a reader that takes them
        as they come never holds the whole log's versions (a million at national scale) at once. They are
        sorted into a file of their own first, so that DuckDB's memory is let go before the first frame."""
        files = self._files()
        if not files:
            return
        with tempfile.TemporaryDirectory(prefix="govreports-versions-") as tmp:
            reader = self._query(_VERSIONS + " ORDER BY agency_id, url, first_seen, _last", files, rows)
            with pq.ParquetWriter(f"{tmp}/versions.parquet", reader.schema) as out:
                for batch in reader:
                    out.write_batch(batch)
            del reader  # and its connection
            for batch in pq.ParquetFile(f"{tmp}/versions.parquet").iter_batches(batch_size=rows):
                yield pa.Table.from_batches([batch]).to_pandas(types_mapper=_INT_TYPES.get)[_VERSION_COLUMNS]

    def frame(self) -> pd.DataFrame:
        """Every attempt, once, in fetched_at order (in the order written within the same microsecond)."""
        files = self._files()
        table = LOG_SCHEMA.empty_table() if not files else self._query(_FRAME, files).read_all().cast(LOG_SCHEMA)
        return table.to_pandas(types_mapper=_INT_TYPES.get)

    def compact(self, min_files: int = 64) -> int:
        """Merge the files written since the last compaction into one when `min_files` or more files have piled
        up (a crawl writes one per 64 agencies); earlier merges are left as they are, so a night rewrites its own
        attempts, not the log's history, until `min_files` merges pile up and are merged in turn. A merged file,
        named at its first input's time so that it sorts where its inputs did, is written whole, then the inputs
        are deleted. Many files are merged COMPACT_GROUP at a time: DuckDB holds a reader per file it reads
        (BENCHMARKS.md, National scale). Call it holding the run lock. Returns the number of files merged."""
        files = self._files()
        if len(files) < max(min_files, 2):
            return 0
        merged = [f for f in files if _MERGED in f.rsplit("/", 1)[-1]]
        if len(merged) < max(min_files, 2):  # the files written since, only (all later than what was merged)
            files = [f for f in files if f not in merged]
        count = len(files)
        while len(files) > COMPACT_GROUP:  # groups of consecutive files: the merged ones keep the order
            for start in range(0, len(files), COMPACT_GROUP):
                self._merge(files[start:start + COMPACT_GROUP])
            first = files[0].rsplit("/", 1)[-1].split("-", 1)[0]  # the stamp of the first file chosen
            files = [f for f in self._files() if f.rsplit("/", 1)[-1] >= first]
        self._merge(files)
        return count if count > 1 else 0

    def _merge(self, files: Sequence[str]) -> None:
        if len(files) < 2:
            return
        stamp = files[0].rsplit("/", 1)[-1].split("-", 1)[0]
        batches = self._query(_ALL, files)
        with self._publish(f"{stamp}{_MERGED}{uuid.uuid4().hex[:12]}.parquet") as out:
            with pq.ParquetWriter(out, LOG_SCHEMA, compression="zstd") as writer:
                for batch in batches:
                    writer.write_table(pa.Table.from_batches([batch]).cast(LOG_SCHEMA))
        for path in files:
            self._fs.delete_file(path)

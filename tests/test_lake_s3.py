"""The lake on an S3-compatible server: moto's, started on loopback in its own process, with real deltalake,
pyarrow and DuckDB. Loads, reloads, snapshots and their changes, checksums and the warehouse build read and
write the bucket as they would a cloud one.

moto runs in a child process, not a thread of the test's: deltalake holds the GIL in some calls (`history`)
while it waits on the server, and a server thread in the same interpreter then never answers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import duckdb
import pytest
from deltalake import DeltaTable
from deltalake.transaction import AddAction

from govreports.load.lake import DATASETS, TABLE_SCHEMAS, Lake
from govreports.load.warehouse import build
from tests.loadhelp import bundle

BUCKET = "lake"
CITY = "浙江省/宁波市"
# The child: a moto server on a free loopback port, which it prints; it stops when its stdin closes.
_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@contextlib.contextmanager
def moto_s3(log: Path | None = None) -> Iterator[str]:
    """An S3 server on loopback (moto, objects in its memory) with an empty bucket BUCKET: its endpoint URL.
    `log`: a file for the server's request log, a line per request (benchmarks/lake_s3.py counts them)."""
    errors = open(log, "w") if log is not None else subprocess.DEVNULL
    child = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=errors, text=True)
    try:
        endpoint = f"http://127.0.0.1:{int(child.stdout.readline())}"
        client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        if log is not None:
            errors.close()


def storage_options(endpoint: str) -> dict[str, str]:
    """What Lake takes for an S3-compatible store. No lock option and no AWS_S3_ALLOW_UNSAFE_RENAME: deltalake
    has put a commit's log entry only if absent (If-None-Match: *) since 0.23 (delta-rs issue 2843), and S3 and
    moto refuse such a PUT when the key exists."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def lake(endpoint) -> Lake:
    """A lake under a prefix of its own in the shared bucket."""
    return Lake(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/parquet", storage_options(endpoint))


def _night(i: int, year: int = 2021, value: int = 10) -> list:
    return [bundle(f"a{i}", f"{i}号区民政局", year, "2021", value + i, 2, region=f"{CITY}/{i}区")]


def test_loads_a_reload_snapshots_and_their_changes_on_s3(lake):
    lake.write([*_night(1), *_night(2, 2022)])
    first = lake.snapshot()
    lake.write(_night(3))
    second = lake.snapshot()
    assert all(f.startswith(f"s3://{BUCKET}/") for files in second.files.values() for f in files)
    added = lake.changes(first.versions, second)
    assert added is not None and {d: len(f) for d, f in added.items()} == {d: 1 for d in DATASETS}
    assert all(set(added[d]) == set(second.files[d]) - set(first.files[d]) for d in DATASETS)
    facts = len(lake.read("facts"))
    lake.write(_night(1))  # a reload: its rows replaced, never doubled, and no increment to add
    assert len(lake.read("facts")) == facts and len(lake.read("reports")) == 3
    assert lake.changes(second.versions, lake.snapshot()) is None
    assert lake.report_ids() == set(lake.read("reports")["report_id"])
    assert sorted(lake.read("reports")["agency_id"]) == ["a1", "a2", "a3"]
    # Every version kept: the first snapshot's facts are still there to read.
    old = DeltaTable(lake.table_uri("facts"), storage_options=lake.options, version=first.versions["facts"])
    assert sorted(set(old.to_pyarrow_table().column("agency_id").to_pylist())) == ["a1", "a2"]
    assert lake.file_count() > 0 and not lake.older_layout()


def test_verify_finds_an_object_changed_outside_the_pipeline(lake, endpoint, tmp_path):
    lake.write(_night(1))
    (target,) = lake.snapshot().files["facts"]
    lake.write(_night(2))
    forged = Lake(str(tmp_path / "forged"))
    forged.write([bundle("a1", "1号区民政局", 2021, "2021", 99999, 2)])
    (forged_facts,) = forged.snapshot().files["facts"]
    key = target[len(f"s3://{BUCKET}/"):]
    client(endpoint).put_object(Bucket=BUCKET, Key=key, Body=Path(forged_facts).read_bytes())  # valid Parquet
    files, tampered = lake.verify(lake.snapshot().files)
    assert [(t.dataset, t.path) for t in tampered] == [("facts", target)]
    assert all(target not in fs for fs in files.values())
    assert sum(map(len, files.values())) == 3  # the other load, whole; the changed one's load left out


def _rows(db: Path, sql: str) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(map(repr, con.execute(sql).fetchall()))


_TABLES = {"reports_all_versions": "SELECT * EXCLUDE (loaded_at) FROM reports_all_versions",
           "facts_all_versions": "SELECT * FROM facts_all_versions",
           "checks_all_versions": "SELECT * FROM checks_all_versions",
           "licensing_trend": "SELECT * FROM licensing_trend",
           "region_rollup": "SELECT * FROM region_rollup",
           "data_quality": "SELECT * FROM data_quality"}


def test_a_database_built_from_the_s3_lake_equals_one_built_from_a_local_lake(lake, tmp_path):
    local = Lake(str(tmp_path / "local"))
    nights = [_night(1), _night(2, 2022), [*_night(3), *_night(4, 2020)]]
    for night in nights:
        lake.write(night)
        local.write(night)
    from_s3 = build(lake, tmp_path / "s3.duckdb")
    from_disk = build(local, tmp_path / "local.duckdb")
    for name, sql in _TABLES.items():
        assert _rows(from_s3, sql) == _rows(from_disk, sql), name
    assert _rows(from_s3, "SELECT count(*) FROM facts_all_versions") != ["(0,)"]
    # One more night: the S3 database is refreshed from that night's objects and equals one built whole.
    lake.write(_night(5, 2022))
    build(lake, from_s3)
    whole = build(lake, tmp_path / "whole.duckdb", full=True)
    for name, sql in _TABLES.items():
        assert _rows(from_s3, sql) == _rows(whole, sql), name
    assert _rows(from_s3, "SELECT agency_id FROM reports") == [repr((f"a{i}",)) for i in range(1, 6)]


def test_a_stale_writer_never_overwrites_a_committed_version(lake):
    """Two writers that read the same version, one after the other: the second one's commit becomes the version
    after the first's, and both loads stay (no log entry overwritten). Sequential, so it does not show what two
    writers at the same instant would do; the lake has one writer (the flow's commit step) in any case."""
    lake.write(_night(1))
    uri, options = lake.table_uri("reports"), lake.options
    first, second = DeltaTable(uri, storage_options=options), DeltaTable(uri, storage_options=options)
    start = first.version()
    staged = {name: lake.stage(_night(i))[0] for i, name in ((2, "first"), (3, "second"))}
    for table, name in ((first, "first"), (second, "second")):
        (mine,) = [s for s in staged[name] if s.dataset == "reports"]
        table.create_write_transaction([AddAction(path=mine.path, size=mine.size, partition_values={"year": "2021"},
                                                  modification_time=0, data_change=True, stats="{}")],
                                       mode="append", schema=TABLE_SCHEMAS["reports"],
                                       partition_by=["year"])
    after = DeltaTable(uri, storage_options=options)
    assert after.version() == start + 2
    assert sorted(set(after.to_pyarrow_table().column("agency_id").to_pylist())) == ["a1", "a2", "a3"]

"""extract.rawzone (content-addressed raw pages) and extract.fetchlog (the Parquet log of attempts)."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from govreports.extract.fetchlog import LOG_SCHEMA, FetchLog
from govreports.extract.rawzone import RawZone

# -- RawZone ---------------------------------------------------------------------------------------


def test_put_get_has_path(tmp_path: Path) -> None:
    raw = RawZone(tmp_path / "raw")
    body = "<html>鄞州区交通运输局</html>".encode("gbk")
    sha, new = raw.put(body)
    assert sha == hashlib.sha256(body).hexdigest() and new
    assert raw.path(sha) == tmp_path / "raw" / sha[:2] / sha[2:4] / sha
    assert raw.path(sha).read_bytes() == body
    assert raw.has(sha) and raw.get(sha) == body
    assert raw.get(sha.upper()) == body  # hex is hex


def test_put_is_idempotent(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    sha, new = raw.put(b"page")
    assert new
    mtime = raw.path(sha).stat().st_mtime_ns
    assert raw.put(b"page") == (sha, False)
    assert raw.path(sha).stat().st_mtime_ns == mtime  # not rewritten
    assert list(raw) == [sha]


def test_empty_body_is_stored(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    sha, new = raw.put(b"")
    assert new and raw.get(sha) == b""


def test_no_temporary_files_remain(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    for i in range(5):
        raw.put(b"body %d" % i)
        raw.put(b"body %d" % i)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 5 and not any(p.name.startswith(".") for p in files)


def test_concurrent_writers_of_the_same_body(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    body = b"x" * 200_000
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(16)

    def write() -> None:
        barrier.wait()
        results.append(raw.put(body))

    threads = [threading.Thread(target=write) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shas = {sha for sha, _ in results}
    assert len(results) == 16 and len(shas) == 1
    assert sum(new for _, new in results) == 1  # exactly one writer stored it
    assert raw.get(shas.pop()) == body
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_corruption_is_detected_and_put_repairs_it(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    sha, _ = raw.put(b"original bytes")
    raw.path(sha).write_bytes(b"original bytez")  # same size, different bytes
    with pytest.raises(ValueError, match="corrupt"):
        raw.get(sha)
    assert raw.put(b"original bytes") == (sha, True)
    assert raw.get(sha) == b"original bytes"


def test_missing_body(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not raw.has(sha)
    with pytest.raises(FileNotFoundError):
        raw.get(sha)


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "g" * 64, "a" * 63, "a" * 65, "", "ab/cd/" + "a" * 58, "a" * 63 + "\0", " " + "a" * 63],
)
def test_malformed_sha_is_rejected_before_touching_the_filesystem(tmp_path: Path, bad: str) -> None:
    raw = RawZone(tmp_path / "raw")
    for call in (raw.get, raw.has, raw.path):
        with pytest.raises(ValueError, match="not a sha256"):
            call(bad)
    assert not (tmp_path / "raw").exists()


def test_iteration_skips_strays(tmp_path: Path) -> None:
    raw = RawZone(tmp_path)
    shas = {raw.put(b"a")[0], raw.put(b"b")[0]}
    sha = next(iter(shas))
    (raw.path(sha).parent / f".{sha[:12]}.xyz.tmp").write_bytes(b"half")  # left by a crash
    (tmp_path / "README").write_text("not a body")
    (tmp_path / "zz").mkdir()
    assert set(raw) == shas
    assert list(RawZone(tmp_path / "absent")) == []


@pytest.mark.parametrize("url", ["mock:///zone", "file://{tmp}/zone"])
def test_a_raw_zone_behind_a_filesystem_url(tmp_path: Path, url: str) -> None:
    # pyarrow's in-memory filesystem (mock://) stands for an object store; file:// is a local disk.
    raw = RawZone(url.format(tmp=tmp_path))
    sha, new = raw.put(b"page")
    assert new and raw.put(b"page") == (sha, False) and raw.has(sha) and raw.get(sha) == b"page"
    assert list(raw) == [sha] and not raw.has(hashlib.sha256(b"other").hexdigest())
    with pytest.raises(FileNotFoundError):
        raw.get(hashlib.sha256(b"other").hexdigest())
    if url.startswith("file"):
        assert (tmp_path / "zone" / sha[:2] / sha[2:4] / sha).read_bytes() == b"page"


# -- FetchLog --------------------------------------------------------------------------------------

T0 = datetime(2025, 1, 10, 2, 0, tzinfo=UTC)


def rec(url: str, outcome: str, minutes: int, **kw: object) -> dict[str, object]:
    return {"url": url, "agency_id": "a1", "kind": "report", "outcome": outcome,
            "fetched_at": T0 + timedelta(minutes=minutes), **kw}


def test_empty_log_frame_has_the_schema_columns(tmp_path: Path) -> None:
    log = FetchLog(tmp_path / "fetch_log")
    df = log.frame()
    assert list(df.columns) == LOG_SCHEMA.names and df.empty
    assert log.last_success("http://x/") is None
    assert log.versions().empty
    log.append([])
    assert not (tmp_path / "fetch_log").exists()


def test_append_writes_one_new_file_per_call_and_never_rewrites(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    log.append([rec("http://h/a", "new", 1, sha256="1" * 64, status=200, bytes=10, year=2020)])
    first = sorted(tmp_path.iterdir())
    assert len(first) == 1 and first[0].suffix == ".parquet"
    mtime = first[0].stat().st_mtime_ns
    log.append([rec("http://h/b", "failed", 2, error="HTTP 503"), rec("http://h/c", "attachment", 3)])
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 and first[0] in files and first[0].stat().st_mtime_ns == mtime
    assert not any(p.name.startswith(".") for p in files)
    assert pq.read_schema(files[0]).equals(LOG_SCHEMA)
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_frame_in_fetched_at_order_with_types(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    log.append([rec("http://h/late", "new", 5, status=200, year=2021, bytes=3)])
    log.append([rec("http://h/early", "failed", 1, error="timed out")])
    df = log.frame()
    assert list(df["url"]) == ["http://h/early", "http://h/late"]
    assert str(df["year"].dtype) == "Int32" and str(df["status"].dtype) == "Int32"
    assert str(df["bytes"].dtype) == "Int64"
    assert pd.isna(df["status"].iloc[0]) and df["status"].iloc[1] == 200
    assert str(df["fetched_at"].dt.tz) == "UTC"


def test_fetched_at_defaults_to_now(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    before = datetime.now(UTC)
    log.append([{"url": "http://h/a", "outcome": "refused", "error": "disallowed by robots.txt"}])
    when = log.frame()["fetched_at"].iloc[0]
    assert when >= pd.Timestamp(before).floor("us")


def test_append_rejects_bad_records(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    with pytest.raises(ValueError, match="outcome"):
        log.append([rec("http://h/a", "exploded", 1)])
    with pytest.raises(ValueError, match="unknown fetch log fields"):
        log.append([rec("http://h/a", "new", 1, colour="red")])
    with pytest.raises(ValueError, match="url"):
        log.append([rec("", "new", 1)])
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_last_success(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    log.append([
        rec("http://h/a", "new", 1, sha256="1" * 64, etag='"v1"'),
        rec("http://h/a", "not_modified", 2, sha256="1" * 64, etag='"v1"'),
        rec("http://h/a", "failed", 3, error="HTTP 503"),
        rec("http://h/b", "attachment", 1),
        rec("http://h/c", "failed", 1, status=404),
    ])
    last = log.last_success("http://h/a")
    assert last is not None and last["outcome"] == "not_modified" and last["etag"] == '"v1"'
    assert last["sha256"] == "1" * 64
    assert log.last_success("http://h/b") is None and log.last_success("http://h/c") is None
    # The cache built by the first call follows later appends of the same instance.
    log.append([rec("http://h/a", "new_version", 4, sha256="2" * 64, last_modified="Tue, 07 Jan 2025 00:00:00 GMT")])
    last = log.last_success("http://h/a")
    assert last is not None and last["sha256"] == "2" * 64 and last["etag"] is None
    # And a fresh instance reads the same from the files.
    again = FetchLog(tmp_path).last_success("http://h/a")
    assert again is not None and again["sha256"] == "2" * 64


def test_the_latest_attempt_map_is_one_read_per_object_and_follows_its_appends(tmp_path: Path, monkeypatch) -> None:
    # The crawl asks for every URL it fetches: the log is read once, on the first question.
    from govreports.extract import fetchlog as fetchlog

    FetchLog(tmp_path / "log").append([rec("http://h/a", "new", 1, sha256="1" * 64)])
    reads: list[str] = []
    real = fetchlog.FetchLog._query
    monkeypatch.setattr(fetchlog.FetchLog, "_query",
                        lambda self, sql, *a, **kw: reads.append(sql) or real(self, sql, *a, **kw))
    log = FetchLog(tmp_path / "log")
    assert log.last_success("http://h/a")["sha256"] == "1" * 64
    assert log.last_success("http://h/b") is None and len(reads) == 1
    log.append([rec("http://h/a", "new_version", 2, sha256="2" * 64), rec("http://h/b", "new", 2, etag='"b"')])
    log.append([rec("http://h/a", "unchanged", 0, sha256="0" * 64)])  # an older attempt does not win
    assert log.last_success("http://h/a")["sha256"] == "2" * 64 and log.last_success("http://h/b")["etag"] == '"b"'
    assert len(reads) == 1
    # Another object (the next run) reads what was written.
    assert FetchLog(tmp_path / "log").last_success("http://h/b")["etag"] == '"b"' and len(reads) == 2


def test_versions_say_which_is_current(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    log.append([rec("http://h/a", "new", 1, sha256="1" * 64, year=2020)])
    log.append([rec("http://h/a", "unchanged", 2, sha256="1" * 64, year=2020)])
    log.append([rec("http://h/a", "new_version", 3, sha256="2" * 64, year=2020)])
    log.append([rec("http://h/a", "failed", 4, error="HTTP 500"), rec("http://h/b", "new", 4, sha256="3" * 64)])
    v = log.versions()
    assert list(v.columns) == ["url", "sha256", "agency_id", "year", "kind", "link_agency", "linked_from",
                               "first_seen", "last_seen", "is_current"]
    rows = {(r.url, r.sha256): r for r in v.itertuples()}
    assert set(rows) == {("http://h/a", "1" * 64), ("http://h/a", "2" * 64), ("http://h/b", "3" * 64)}
    old, cur = rows[("http://h/a", "1" * 64)], rows[("http://h/a", "2" * 64)]
    assert not old.is_current and cur.is_current and rows[("http://h/b", "3" * 64)].is_current
    assert old.first_seen == pd.Timestamp(T0 + timedelta(minutes=1))
    assert old.last_seen == pd.Timestamp(T0 + timedelta(minutes=2))
    assert old.year == 2020


def test_concurrent_appends(tmp_path: Path) -> None:
    log = FetchLog(tmp_path)
    log.last_success("http://h/0")  # build the cache first, so appends must keep it current

    def write(i: int) -> None:
        log.append([rec(f"http://h/{i}", "new", i, sha256=f"{i:064x}")])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log.frame()) == 12 and len(list(tmp_path.glob("*.parquet"))) == 12
    assert all(log.last_success(f"http://h/{i}") is not None for i in range(12))


def test_compact_merges_files_and_keeps_every_attempt(tmp_path):
    from govreports.extract.fetchlog import FetchLog

    log = FetchLog(tmp_path / "log")
    for i in range(10):
        log.append([{"url": f"http://127.0.0.1/{i}", "agency_id": "a", "kind": "report", "outcome": "new",
                     "sha256": f"{i:064x}"}])
    before = log.frame()
    assert log.compact(min_files=20) == 0
    assert log.compact(min_files=5) == 10
    assert len(list((tmp_path / "log").glob("*.parquet"))) == 1
    after = FetchLog(tmp_path / "log").frame()
    assert after.equals(before)
    assert FetchLog(tmp_path / "log").last_success("http://127.0.0.1/3")["sha256"] == f"{3:064x}"


def test_many_files_are_compacted_in_groups_that_keep_the_order_of_writing(tmp_path, monkeypatch):
    from govreports.extract import fetchlog

    monkeypatch.setattr(fetchlog, "COMPACT_GROUP", 3)  # 10 files: groups of 3, then one
    log = FetchLog(tmp_path / "log")
    for i in range(10):  # one URL fetched ten times at one instant: only the order written tells the latest
        log.append([rec("http://h/same", "new_version", 0, sha256=f"{i:064x}", etag=f'"{i}"')])
    before, versions = log.frame(), log.versions()
    assert log.compact(min_files=4) == 10
    assert len(list((tmp_path / "log").glob("*.parquet"))) == 1
    fresh = FetchLog(tmp_path / "log")
    assert fresh.frame().equals(before) and fresh.versions().equals(versions)
    assert fresh.last_success("http://h/same")["etag"] == '"9"'


def test_compaction_merges_a_nights_files_and_leaves_earlier_merges_alone(tmp_path):
    log = FetchLog(tmp_path / "log")
    merged_first = None
    for night in range(3):
        for i in range(3):
            log.append([rec(f"http://h/{i}", "new" if night == 0 else "unchanged", 10 * night + i,
                            sha256=f"{i:064x}", etag=f'"{night}"')])
        log.compact(min_files=4)
        merged_first = merged_first or next((tmp_path / "log").glob("*-compact-*.parquet"), None)
    files = sorted((tmp_path / "log").glob("*.parquet"))
    # night 1 merged nights 0 and 1; night 2 merged its own three files only: the history is not rewritten
    assert len(files) == 2 and all("-compact-" in f.name for f in files) and files[0] == merged_first
    assert len(pq.read_table(files[1])) == 3
    log.compact(min_files=2)  # as many merges as min_files: they are merged in turn
    files = sorted((tmp_path / "log").glob("*.parquet"))
    assert len(files) == 1 and "-compact-" in files[0].name
    assert len(FetchLog(tmp_path / "log").frame()) == 9  # every attempt once
    log.append([rec("http://h/0", "unchanged", 20, sha256=f"{0:064x}", etag='"late"')])  # a tie, written later
    assert sorted((tmp_path / "log").glob("*.parquet"))[0] == files[0]
    assert FetchLog(tmp_path / "log").last_success("http://h/0")["etag"] == '"late"'
    assert FetchLog(tmp_path / "log").last_success("http://h/1")["etag"] == '"2"'


def test_a_compaction_stopped_before_deleting_its_inputs_changes_no_read(tmp_path):
    # The merged file is written before its inputs are deleted: killed in between, the log holds some
    # attempts twice. Every read takes them once, and so it stays after the next compaction.
    import shutil

    root, aside = tmp_path / "log", tmp_path / "aside"
    log = FetchLog(root)
    for night in range(3):
        log.append([rec(f"http://h/{u}", "not_modified" if night else "new", 10 * night + u,
                        sha256=f"{u + (night >= 2 and u == 1):064x}", etag=f'"{night}"',
                        year=None if night == 1 else 2020 + u, link_agency="北仑区民政局" if u == 2 else None)
                    for u in range(3)])
        log.append([rec("http://h/0", "failed", 10 * night + 5, error="HTTP 503"),
                    rec("http://h/9", "new", 10 * night + 5, sha256=f"{90 + night:064x}")])

    def reads() -> tuple:
        fresh = FetchLog(root)
        last = {f"http://h/{u}": fresh.last_success(f"http://h/{u}") for u in (0, 1, 2, 9)}
        return fresh.frame(), fresh.versions(), last

    frame, versions, last = reads()
    assert versions[versions["url"] == "http://h/1"]["is_current"].tolist() == [False, True]
    assert set(versions["year"].dropna()) == {2020, 2021, 2022}  # the latest year given, not a later null
    assert last["http://h/0"]["etag"] == '"2"' and last["http://h/9"]["sha256"] == f"{92:064x}"
    shutil.copytree(root, aside)
    assert log.compact(min_files=2) == 6
    for f in sorted(aside.iterdir())[:4]:  # the inputs not deleted yet when the run was killed
        shutil.copy(f, root / f.name)
    for merged in (4, 2, 0):  # the four leftovers, then the two merged files once they are as many as min_files
        got_frame, got_versions, got_last = reads()
        pd.testing.assert_frame_equal(got_frame, frame)
        pd.testing.assert_frame_equal(got_versions, versions)
        assert got_last == last
        assert log.compact(min_files=2) == merged


def test_attempts_at_the_same_time_go_to_the_later_one(tmp_path):
    # Two attempts logged in the same microsecond: the one logged later wins, for the current version,
    # its attributes and the conditional request alike, whether or not the history was merged.
    log = FetchLog(tmp_path / "log")
    log.append([rec("http://h/u", "new", 0, sha256="A" * 64, agency_id="x")])
    log.append([rec("http://h/u", "new_version", 1, sha256="B" * 64, agency_id="y", etag='"b"')])
    log.append([rec("http://h/u", "unchanged", 1, sha256="A" * 64, agency_id="x", etag='"a"')])
    for merged in (False, True):
        if merged:
            assert log.compact(min_files=2) == 3
        fresh = FetchLog(tmp_path / "log")
        current = fresh.versions().set_index("sha256")["is_current"].to_dict()
        assert current == {"A" * 64: True, "B" * 64: False}, merged
        assert fresh.last_success("http://h/u")["etag"] == '"a"'
    log.append([rec("http://h/v", "new", 2, sha256="C" * 64, agency_id="x")])
    log.append([rec("http://h/v", "unchanged", 3, sha256="C" * 64, agency_id="y")])
    log.append([rec("http://h/v", "unchanged", 3, sha256="C" * 64, agency_id="x")])
    assert FetchLog(tmp_path / "log").versions().set_index("url").loc["http://h/v", "agency_id"] == "x"


def test_a_log_behind_a_filesystem_url_and_an_old_state_folder(tmp_path: Path) -> None:
    # The warehouse may be a pyarrow filesystem URL (file://, s3://); an older log's `_state/` folder
    # of derived aggregates is not read.
    (tmp_path / "log" / "_state").mkdir(parents=True)
    (tmp_path / "log" / "_state" / "latest.parquet").write_bytes(b"stale")
    log = FetchLog(f"file://{tmp_path}/log")
    log.append([rec("http://h/a", "new", 1, sha256="1" * 64, etag='"1"')])
    log.append([rec("http://h/a", "not_modified", 2, sha256="1" * 64, etag='"1"')])
    assert log.last_success("http://h/a")["outcome"] == "not_modified"
    assert log.compact(min_files=2) == 2
    assert len(list((tmp_path / "log").glob("*.parquet"))) == 1
    assert not [p for p in (tmp_path / "log").iterdir() if p.name.startswith(".")]  # no temporary file left
    again = FetchLog(f"file://{tmp_path}/log")
    assert len(again.frame()) == 2
    assert again.versions()["first_seen"].tolist() == [pd.Timestamp(T0 + timedelta(minutes=1))]


def test_log_files_written_before_a_column_was_added_still_read(tmp_path: Path) -> None:
    import duckdb
    import pyarrow as pa

    root = tmp_path / "fetch_log"
    root.mkdir()
    old_schema = pa.schema([f for f in LOG_SCHEMA if f.name != "link_agency"])
    written = pd.Timestamp("2024-01-05", tz="UTC")
    old = pa.Table.from_pylist([{"url": "http://h/old", "outcome": "new", "fetched_at": written, "sha256": "1" * 64}],
                               schema=old_schema)
    pq.write_table(old, root / "20240105T000000000000Z-old.parquet")
    log = FetchLog(root)
    log.append([rec("http://h/new", "new", 2, sha256="2" * 64, link_agency="北仑区民政局")])
    frame = log.frame()
    assert list(frame["url"]) == ["http://h/old", "http://h/new"]
    assert frame["link_agency"].isna().tolist() == [True, False]
    assert log.last_success("http://h/old")["sha256"] == "1" * 64
    with duckdb.connect() as con:  # the warehouse's fetch_log view reads both kinds of file
        rows = con.execute(f"SELECT url, link_agency FROM read_parquet('{root}/*.parquet', union_by_name = true) "
                           "ORDER BY url").fetchall()
    assert rows == [("http://h/new", "北仑区民政局"), ("http://h/old", None)]


def test_a_log_on_another_filesystem_reads_the_same(tmp_path: Path) -> None:
    # Logs not on a local disk (s3://) are streamed to DuckDB through pyarrow, not read by DuckDB itself:
    # pyarrow's in-memory filesystem (mock://) stands for one, beside the same log on disk.
    import pyarrow as pa

    logs = [FetchLog(tmp_path / "log"), FetchLog("mock:///log")]
    old_schema = pa.schema([f for f in LOG_SCHEMA if f.name != "link_agency"])
    old = pa.Table.from_pylist([rec("http://h/a", "new", 0, sha256="0" * 64, etag='"0"')], schema=old_schema)
    for log in logs:
        log._fs.create_dir(log._base)
        pq.write_table(old, f"{log._base}/20240105T000000000000Z-old.parquet", filesystem=log._fs)
        log.append([rec("http://h/a", "new_version", 1, sha256="A" * 64, link_agency="x"),
                    rec("http://h/b", "new", 1, sha256="B" * 64, etag='"b"')])
        log.append([rec("http://h/a", "unchanged", 1, sha256="0" * 64, etag='"tie"')])

    def reads(log: FetchLog) -> tuple:
        return log.frame(), log.versions(), log.last_success("http://h/a"), log.last_success("http://h/b")

    disk, other = reads(logs[0]), reads(logs[1])
    assert disk[2]["etag"] == '"tie"' and disk[1]["link_agency"].isna().tolist() == [True, False, True]
    pd.testing.assert_frame_equal(other[0], disk[0])
    pd.testing.assert_frame_equal(other[1], disk[1])
    assert other[2:] == disk[2:]
    assert [log.compact(min_files=2) for log in logs] == [3, 3]
    logs[1]._latest = None  # read the merged file again
    pd.testing.assert_frame_equal(logs[1].frame(), disk[0])
    assert logs[1].last_success("http://h/a") == disk[2]

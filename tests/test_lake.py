"""The Parquet lake on real files: Delta tables by year, schemas, idempotent reloads, versions, checksums,
commits that a reader sees whole or not at all, safe paths."""

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from govreports.load.lake import CHECKSUMS, DATASETS, SCHEMAS, Lake, LakeError
from tests.loadhelp import bundle


def _data_files(root: Path, dataset: str) -> list[Path]:
    return sorted((root / dataset).glob("year=*/part-*.parquet"))


def test_write_and_read_back_with_years_and_chinese_names(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    b1 = bundle("330212-jtj", "鄞州区交通运输局", 2020, "2019", 16363, 1077)
    b2 = bundle("330212-jtj", "鄞州区交通运输局", 2021, "2021", 15000, 900)
    b3 = bundle("330203-jtj", "海曙区交通运输局", 2021, "2021", 9, 9)
    summary = lake.write([b1, b2, b3])
    assert summary.reports == 3 and summary.partitions == {
        (2020, "330212-jtj"), (2021, "330212-jtj"), (2021, "330203-jtj")}
    # One file per dataset and year, agencies inside it: not one per agency.
    files = _data_files(tmp_path / "parquet", "facts")
    assert [f.parent.name for f in files] == ["year=2020", "year=2021"]
    table = pq.read_table(files[1], partitioning=None)
    assert table.schema.equals(SCHEMAS["facts"]) and table.column_names[0] == "agency_id"
    assert "year" not in table.column_names  # the year lives in the path, as Delta partitions do
    assert table.column("agency_id").to_pylist() == sorted(table.column("agency_id").to_pylist())
    assert pq.ParquetFile(files[1]).metadata.row_group(0).column(0).compression == "ZSTD"
    facts = lake.read("facts")
    assert list(facts.columns[:2]) == ["year", "agency_id"]
    assert len(facts) == sum(len(b.fact_rows) for b in (b1, b2, b3))
    assert set(facts["agency"]) == {"鄞州区交通运输局", "海曙区交通运输局"}
    assert set(lake.read("checks")[["agency_id", "agency"]].itertuples(index=False)) == {
        ("330212-jtj", "鄞州区交通运输局"), ("330203-jtj", "海曙区交通运输局")}
    reports = lake.read("reports")
    assert reports.set_index(["year", "agency_id"]).loc[(2021, "330212-jtj"), "template"] == "2021"


def test_other_readers_see_the_same_lake(tmp_path):
    """deltalake with pyarrow, and DuckDB over the files of a snapshot, read what `read` reads."""
    lake = Lake(str(tmp_path))
    lake.write([bundle(f"a{i}", f"{i}号区民政局", 2020 + i % 2, "2021", 10 + i, 2) for i in range(4)])
    ours = lake.read("facts")
    by_delta = DeltaTable(str(tmp_path / "facts")).to_pyarrow_table().to_pandas()
    assert len(by_delta) == len(ours) and set(by_delta["report_id"]) == set(ours["report_id"])
    files = lake.snapshot().files["facts"]
    with duckdb.connect() as con:
        count, years = con.execute(f"SELECT count(*), list(DISTINCT year ORDER BY year) FROM read_parquet({files}, "
                                   "hive_partitioning = true)").fetchone()
    assert count == len(ours) and years == [2020, 2021]


def test_reload_replaces_rows_and_never_duplicates(tmp_path):
    lake = Lake(str(tmp_path))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    other = bundle("a2", "乙区民政局", 2022, "2021", 7, 2)
    lake.write([b, other])
    first = lake.read("facts")
    lake.write([b])
    lake.write([b])
    again = lake.read("facts")
    assert len(again) == len(first) and sorted(again["value"].dropna()) == sorted(first["value"].dropna())
    assert len(lake.read("reports")) == 2
    assert len(lake.read("checks")) == len(b.check_rows) + len(other.check_rows)


def test_a_changed_page_is_a_second_version_and_current_is_left_to_the_build(tmp_path):
    lake = Lake(str(tmp_path))
    old = bundle("a1", "甲区民政局", 2022, "2021", 10, 2, fetched_at="2023-01-20")
    new = bundle("a1", "甲区民政局", 2022, "2021", 11, 2, fetched_at="2023-03-01")
    lake.write([new])
    lake.write([old])
    reports = lake.read("reports").set_index("report_id")
    assert set(reports.index) == {old.report["report_id"], new.report["report_id"]}
    # Which version is current depends on the fetch log's history, not on the version: the warehouse
    # decides it at each build (tests/test_versions.py), the lake stores no flag that could go stale.
    assert "is_current" not in reports.columns and "is_current" not in SCHEMAS["reports"].names


def test_every_version_of_the_lake_is_kept(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    first = lake.snapshot()
    lake.write([bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])  # a reload: its old rows' file is replaced
    assert len(lake.read("reports")) == 2
    old = DeltaTable(str(tmp_path / "reports"), version=first.versions["reports"])
    assert old.to_pyarrow_table().column("agency_id").to_pylist() == ["a1"]
    assert all(Path(f).exists() for files in first.files.values() for f in files)  # nothing vacuumed


def test_staged_files_are_invisible_until_committed(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    staged, _ = lake.stage([bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])
    assert len(staged) == 3 and all((tmp_path / s.dataset / s.path).exists() for s in staged)
    assert set(lake.read("reports")["agency_id"]) == {"a1"}
    assert lake.report_ids() == {r for r in lake.read("reports")["report_id"]}
    lake.commit(lake.merge(staged))
    assert set(lake.read("reports")["agency_id"]) == {"a1", "a2"}


def test_a_sweep_deletes_only_files_that_no_version_committed(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    first = lake.snapshot()
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 11, 2)])  # a reload: the first version's files leave it
    dead, _ = lake.stage([bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])  # a run killed before its commit
    kept = {p for d in DATASETS for p in _data_files(tmp_path, d)} - {tmp_path / s.dataset / s.path for s in dead}
    old_rows = DeltaTable(str(tmp_path / "facts"), version=first.versions["facts"]).to_pyarrow_table().num_rows
    assert lake.sweep() == 3
    assert {p for d in DATASETS for p in _data_files(tmp_path, d)} == kept
    assert not any((tmp_path / s.dataset / CHECKSUMS / (Path(s.path).name + ".sha256")).exists() for s in dead)
    old = DeltaTable(str(tmp_path / "facts"), version=first.versions["facts"])
    assert old_rows and old.to_pyarrow_table().num_rows == old_rows  # the older version still reads whole
    assert lake.sweep() == 0


def test_a_sweep_before_any_commit_and_of_an_older_lake(tmp_path):
    staged, _ = Lake(str(tmp_path / "new")).stage([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    assert Lake(str(tmp_path / "new")).sweep() == len(staged)
    old = tmp_path / "old" / "reports" / "year=2022" / "agency_id=a1"
    old.mkdir(parents=True)
    (old / "part.parquet").write_bytes(b"PAR1")
    assert Lake(str(tmp_path / "old")).sweep() == 0 and (old / "part.parquet").exists()


def test_merge_makes_one_file_per_dataset_and_year(tmp_path):
    lake = Lake(str(tmp_path))
    staged = []
    for i in range(5):
        staged += lake.stage([bundle(f"a{i}", f"{i}号区民政局", 2021 + i % 2, "2021", 10 + i, 2)])[0]
    merged = lake.merge(staged)
    assert sorted((s.dataset, s.year) for s in merged) == sorted((d, y) for d in DATASETS for y in (2021, 2022))
    assert sum(s.rows for s in merged if s.dataset == "facts") == sum(s.rows for s in staged if s.dataset == "facts")
    assert not any((tmp_path / s.dataset / s.path).exists() for s in staged)  # the small files are gone
    lake.commit(merged)
    assert len(lake.read("reports")) == 5 and len(_data_files(tmp_path, "facts")) == 2


def test_a_commit_killed_between_tables_is_never_seen_and_is_undone(tmp_path):
    """Facts committed, reports not (a kill between the tables' commits): a reader takes the facts of the
    commit the reports name, and the next commit first restores facts to it (never a duplicate)."""
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    b = bundle("a2", "乙区民政局", 2022, "2021", 20, 2)

    def kill_after_facts(dataset: str) -> None:
        if dataset == "facts":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lake.commit(lake.merge(lake.stage([b])[0]), on_commit=kill_after_facts)
    # The facts table's latest version holds the half commit's rows...
    assert "a2" in DeltaTable(str(tmp_path / "facts")).to_pyarrow_table().column("agency_id").to_pylist()
    snap = lake.snapshot()
    with duckdb.connect() as con:
        agencies = con.execute(f"SELECT DISTINCT agency_id FROM read_parquet({snap.files['facts']})").fetchall()
    assert agencies == [("a1",)]  # ...and the snapshot a reader takes does not
    lake.write([b])  # the same report again, as the next run loads it
    facts = lake.read("facts")
    assert len(facts[facts["agency_id"] == "a2"]) == len(b.fact_rows)


def test_changes_lists_the_files_an_append_added_and_nothing_else(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    before = lake.snapshot()
    lake.write([bundle("a2", "乙区民政局", 2023, "2021", 20, 2)])
    after = lake.snapshot()
    added = lake.changes(before.versions, after)
    assert {d: [Path(f).parent.name for f in files] for d, files in added.items()} == {
        d: ["year=2023"] for d in DATASETS}
    assert set(added["facts"]) == set(after.files["facts"]) - set(before.files["facts"])
    assert lake.changes(after.versions, after) == {d: [] for d in DATASETS}
    lake.write([bundle("a2", "乙区民政局", 2023, "2021", 20, 2)])  # a reload removes rows: no increment
    assert lake.changes(after.versions, lake.snapshot()) is None
    assert lake.changes({}, after) is None


def test_each_data_file_has_the_checksum_of_its_bytes(tmp_path):
    lake = Lake(f"file://{tmp_path}")  # through a filesystem URL, as on an object store
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    for dataset in DATASETS:
        (part,) = _data_files(tmp_path, dataset)
        recorded = (tmp_path / dataset / CHECKSUMS / (part.name + ".sha256")).read_text()
        assert recorded == hashlib.sha256(part.read_bytes()).hexdigest()
    files, tampered = lake.verify(lake.snapshot().files)
    assert tampered == [] and {d: len(f) for d, f in files.items()} == {d: 1 for d in DATASETS}


def test_a_file_changed_outside_the_pipeline_is_found_and_its_load_left_out(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2), bundle("a2", "乙区民政局", 2023, "2021", 20, 2)])
    lake.write([bundle("a3", "丙区民政局", 2022, "2021", 30, 2)])
    forged = Lake(str(tmp_path / "forged"))
    forged.write([bundle("a1", "甲区民政局", 2022, "2021", 99999, 2)])
    first_2022 = next(f for f in lake.snapshot().files["facts"] if "year=2022" in f and
                      "a1" in pq.read_table(f, partitioning=None).column("agency_id").to_pylist())
    Path(first_2022).write_bytes(_data_files(tmp_path / "forged", "facts")[0].read_bytes())  # valid Parquet
    files, tampered = lake.verify(lake.snapshot().files)
    assert [(t.dataset, t.year, t.path) for t in tampered] == [("facts", 2022, first_2022)]
    assert tampered[0].actual_sha256 == hashlib.sha256(Path(first_2022).read_bytes()).hexdigest()
    # That load's 2022 files are left out in every dataset (no report without its facts); its 2023 files
    # and the other load's files are read.
    kept = {d: sorted(a for f in fs for a in set(pq.read_table(f, partitioning=None).column("agency_id").to_pylist()))
            for d, fs in files.items()}
    assert kept == {d: ["a2", "a3"] for d in DATASETS}


def test_a_file_without_a_recorded_checksum_is_loaded_with_a_warning(tmp_path, caplog):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    for sidecar in tmp_path.rglob("*.sha256"):
        sidecar.unlink()
    files, tampered = lake.verify(lake.snapshot().files)
    assert tampered == [] and all(len(f) == 1 for f in files.values())
    assert "3 lake files carry no checksum" in caplog.text


@pytest.mark.parametrize("agency_id", ["../escape", "a/b", "a\x00b", "a\nb", "鄞州", "x" * 300, "", ".."])
def test_unsafe_agency_ids_are_refused_before_anything_is_written(tmp_path, agency_id):
    lake = Lake(str(tmp_path / "lake"))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    b.report["agency_id"] = agency_id
    with pytest.raises(LakeError):
        lake.write([b])
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


def test_report_ids_and_files_list_what_the_lake_holds(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    assert lake.report_ids() == set() and lake.files("reports") == []
    bundles = [bundle(f"a{i}", f"{i}号区民政局", 2019 + i % 3, "2021", 10 + i, 2) for i in range(7)]
    lake.write(bundles)
    lake.stage([bundle("b1", "乙", 2019, "2021", 1, 1)])  # staged, never committed: not part of the lake
    assert lake.report_ids() == {b.report["report_id"] for b in bundles}
    files = lake.files("facts")
    assert len(files) == 3 and files == sorted(files)
    assert all(f.startswith(str(tmp_path / "lake" / "facts" / "year=")) for f in files)
    assert lake.file_count() == len(list((tmp_path / "lake").rglob("*"))) - len(
        [p for p in (tmp_path / "lake").rglob("*") if p.is_dir()])


def test_a_lake_of_the_old_layout_asks_for_one_reparse(tmp_path):
    """Lakes of a file per agency and year are refused with what to do, never read as empty (the nightly run
    would take every page for new) or half."""
    part = tmp_path / "reports" / "year=2022" / "agency_id=a1" / "part.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"report_id": ["x"]}), part)
    lake = Lake(str(tmp_path))
    assert lake.older_layout()
    with pytest.raises(LakeError, match="govreports reparse"):
        lake.report_ids()
    with pytest.raises(LakeError, match="govreports reparse"):
        lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])


def test_published_is_stored_as_a_date(tmp_path):
    lake = Lake(str(tmp_path))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    b.report["published"] = "2023-01-15"  # the parse stage's ISO string (extract/page.py)
    lake.write([b])
    (part,) = _data_files(tmp_path, "reports")
    assert pq.read_table(part, partitioning=None).schema.field("published").type == pa.date32()
    assert list(lake.read("reports")["published"]) == [dt.date(2023, 1, 15)]


def _canon(df) -> list[tuple]:
    return sorted(map(tuple, df.astype(str).values.tolist()))


def test_compaction_merges_small_loads_without_changing_rows(tmp_path):
    lake = Lake(str(tmp_path))
    for i in range(6):  # six nights, two years
        lake.write([bundle(f"a{i}", f"{i}号区民政局", 2021 + i % 2, "2021", 10 + i, 2)])
    before, rows = lake.snapshot(), {d: lake.read(d) for d in DATASETS}
    assert lake.compact(at=4) == 0  # three loads a year: not yet
    assert lake.compact(at=3) == 18  # every file of both years, in every dataset
    after = lake.snapshot()
    assert {d: len(f) for d, f in after.files.items()} == {d: 2 for d in DATASETS}
    for d in DATASETS:
        assert _canon(lake.read(d)) == _canon(rows[d]) and len(rows[d]) > 0
    # A change of files, not of rows: a refresh has nothing to add; every earlier version is still readable.
    assert lake.changes(before.versions, after) == {d: [] for d in DATASETS}
    assert all(Path(f).exists() for files in before.files.values() for f in files)
    assert lake.verify(after.files)[1] == []


def test_compaction_leaves_a_changed_file_alone(tmp_path):
    lake = Lake(str(tmp_path))
    for i in range(3):
        lake.write([bundle(f"a{i}", f"{i}号区民政局", 2021, "2021", 10 + i, 2)])
    victim = Path(lake.snapshot().files["facts"][0])
    victim.write_bytes(Path(lake.snapshot().files["facts"][1]).read_bytes())
    assert lake.compact(at=3) == 6  # the two good loads merged, in every dataset; the changed one left as it was
    assert victim.exists() and str(victim) in lake.snapshot().files["facts"]


def test_a_reload_drops_a_changed_file_instead_of_rewriting_it(tmp_path):
    """A reload rewrites the files holding the reloaded reports without them; a file changed outside the
    pipeline is not rewritten (its forged rows would get a checksum of ours): it goes."""
    lake = Lake(str(tmp_path))
    a1, a2 = bundle("a1", "甲区民政局", 2022, "2021", 10, 2), bundle("a2", "乙区民政局", 2022, "2021", 20, 2)
    lake.write([a1, a2])
    (facts,) = lake.files("facts")
    table = pq.read_table(facts, partitioning=None)
    forged = table.set_column(table.schema.get_field_index("value"), "value",
                              pa.array([99999.0] * table.num_rows, pa.float64()))
    pq.write_table(forged, facts)  # a2's rows forged, in the file that also holds a1's
    lake.write([a1])  # a1 reloaded
    facts_now = lake.read("facts")
    assert 99999 not in set(facts_now["value"]) and set(facts_now["agency_id"]) == {"a1"}
    assert lake.verify(lake.snapshot().files)[1] == []

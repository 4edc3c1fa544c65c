"""The Parquet lake on real files: partitions, schemas, idempotent reloads, versions, safe paths."""

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from govreports.load.lake import CHECKSUM_SUFFIX, FORMAT, FORMAT_FILE, SCHEMAS, Lake, LakeError
from tests.loadhelp import bundle


def test_write_and_read_back_with_partitions_and_chinese_names(tmp_path):
    lake = Lake(str(tmp_path / "parquet"))
    b1 = bundle("330212-jtj", "鄞州区交通运输局", 2020, "2019", 16363, 1077)
    b2 = bundle("330212-jtj", "鄞州区交通运输局", 2021, "2021", 15000, 900)
    summary = lake.write([b1, b2])
    assert summary.reports == 2 and summary.partitions == {(2020, "330212-jtj"), (2021, "330212-jtj")}
    part = tmp_path / "parquet" / "facts" / "year=2020" / "agency_id=330212-jtj" / "part.parquet"
    table = pq.read_table(part)
    assert table.schema.equals(SCHEMAS["facts"])
    # The partition keys live in the path; the name is stored under the one name it has everywhere.
    assert "agency" in table.column_names and not {"agency_id", "year", "agency_name"} & set(table.column_names)
    assert set(table.column("agency").to_pylist()) == {"鄞州区交通运输局"}
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    facts = lake.read("facts")
    assert len(facts) == len(b1.fact_rows) + len(b2.fact_rows)
    assert set(facts["agency"]) == {"鄞州区交通运输局"}
    reports = lake.read("reports")
    assert set(reports["agency"]) == {"鄞州区交通运输局"}
    assert set(lake.read("checks")[["agency_id", "agency"]].itertuples(index=False)) == {
        ("330212-jtj", "鄞州区交通运输局")}
    assert reports.set_index("year").loc[2021, "template"] == "2021"


def test_reload_replaces_rows_and_never_duplicates(tmp_path):
    lake = Lake(str(tmp_path))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    lake.write([b])
    first = lake.read("facts")
    lake.write([b])
    lake.write([b])
    again = lake.read("facts")
    assert len(again) == len(first)
    assert len(lake.read("reports")) == 1
    assert len(lake.read("checks")) == len(b.check_rows)
    assert not list(tmp_path.rglob("*.tmp"))


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


def _part(root, dataset="facts", year=2022, agency_id="a1"):
    return root / dataset / f"year={year}" / f"agency_id={agency_id}" / "part.parquet"


def test_each_partition_file_has_the_checksum_of_its_bytes(tmp_path):
    lake = Lake(f"file://{tmp_path}")  # through a pyarrow filesystem URL, as on an object store
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    for dataset in SCHEMAS:
        part = _part(tmp_path, dataset)
        recorded = part.with_name(part.name + CHECKSUM_SUFFIX).read_text()
        assert recorded == hashlib.sha256(part.read_bytes()).hexdigest()
    files, tampered = lake.verified()
    assert tampered == [] and {d: len(f) for d, f in files.items()} == {d: 1 for d in SCHEMAS}


def test_a_file_changed_outside_the_pipeline_is_found_and_its_partition_left_out(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2), bundle("a2", "乙区民政局", 2022, "2021", 20, 2)])
    forged = Lake(str(tmp_path / "forged"))
    forged.write([bundle("a1", "甲区民政局", 2022, "2021", 99999, 2)])
    part = _part(tmp_path)
    part.write_bytes(_part(tmp_path / "forged").read_bytes())  # valid Parquet of the right schema
    files, tampered = lake.verified()
    assert [(t.dataset, t.year, t.agency_id) for t in tampered] == [("facts", 2022, "a1")]
    assert tampered[0].path == str(part) and tampered[0].actual_sha256 == hashlib.sha256(part.read_bytes()).hexdigest()
    # The whole partition is left out, in every dataset: no report without its facts.
    assert {d: [Path(f).parts[-2] for f in fs] for d, fs in files.items()} == {d: ["agency_id=a2"] for d in SCHEMAS}
    # A new load into that partition does not take the forged rows along (nor record their checksum).
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 11, 2)])
    assert 99999 not in set(lake.read("facts")["value"])
    assert lake.verified()[1] == []


def test_a_kill_between_the_checksum_and_the_file_leaves_the_old_file_accepted(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    before = _part(tmp_path).read_bytes()
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 11, 2)])
    # The state a kill after the checksum's move and before the file's leaves: the old file in place.
    _part(tmp_path).write_bytes(before)
    assert lake.verified()[1] == []
    # A file that was never the pipeline's is still found.
    _part(tmp_path).write_bytes(_part(tmp_path, "checks").read_bytes())
    assert [t.dataset for t in lake.verified()[1]] == ["facts"]


def test_a_file_from_before_checksums_is_loaded(tmp_path, caplog):
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    for sidecar in tmp_path.rglob("*" + CHECKSUM_SUFFIX):
        sidecar.unlink()
    files, tampered = lake.verified()
    assert tampered == [] and all(len(f) == 1 for f in files.values())
    assert "3 lake files carry no checksum" in caplog.text


@pytest.mark.parametrize("agency_id", ["../escape", "a/b", "a\x00b", "a\nb", "鄞州", "x" * 300, "", ".."])
def test_unsafe_agency_ids_cannot_make_paths(tmp_path, agency_id):
    lake = Lake(str(tmp_path / "lake"))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    b.report["agency_id"] = agency_id
    with pytest.raises(LakeError):
        lake.write([b])
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))
    assert not (tmp_path / "escape").exists()


def test_file_url_root(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    assert (tmp_path / "lake" / "reports" / "year=2022" / "agency_id=a1" / "part.parquet").exists()
    assert len(Lake(str(tmp_path / "lake")).read("reports")) == 1


def test_report_ids_and_files_list_what_the_lake_holds(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    assert lake.report_ids() == set() and lake.files("reports") == []
    bundles = [bundle(f"a{i}", f"{i}号区民政局", 2019 + i % 3, "2021", 10 + i, 2) for i in range(7)]
    lake.write(bundles)
    # Debris of an interrupted write beside a partition file is not part of the lake.
    (tmp_path / "lake" / "reports" / "year=2019" / "agency_id=a0" / ".part.parquet.tmp").write_bytes(b"PAR1 half")
    assert lake.report_ids() == {b.report["report_id"] for b in bundles}
    files = lake.files("facts")
    assert len(files) == 7 and files == sorted(files)
    assert all(f.startswith(str(tmp_path / "lake" / "facts")) and f.endswith("/part.parquet") for f in files)


def test_a_lake_of_the_old_layout_asks_for_one_reparse(tmp_path):
    """Lakes written before the partitions were named agency_id= are refused with what to do, never
    read as empty (the nightly run would take every page for new) or half."""
    lake = Lake(str(tmp_path))
    lake.write([bundle("a1", "甲区民政局", 2022, "2021", 10, 2)])
    new = tmp_path / "reports" / "year=2022" / "agency_id=a1"
    new.rename(new.with_name("agency=a1"))
    with pytest.raises(LakeError, match="govreports reparse"):
        lake.report_ids()
    with pytest.raises(LakeError, match="govreports reparse"):
        lake.files("reports")


def _stringify_published(part: Path, values: list[str | None]) -> None:
    """Rewrite a reports file as a FORMAT 2 lake held it: `published` an (unchecked) ISO string."""
    table = pq.read_table(part)
    i = table.schema.get_field_index("published")
    pq.write_table(table.set_column(i, "published", pa.array(values, pa.string())), part)
    part.with_name(part.name + CHECKSUM_SUFFIX).unlink()


def test_published_is_stored_as_a_date(tmp_path):
    lake = Lake(str(tmp_path))
    b = bundle("a1", "甲区民政局", 2022, "2021", 10, 2)
    b.report["published"] = "2023-01-15"  # the parse stage's ISO string (extract/page.py)
    lake.write([b])
    assert (tmp_path / FORMAT_FILE).read_text().strip() == FORMAT == "3"
    assert pq.read_table(_part(tmp_path, "reports")).schema.field("published").type == pa.date32()
    assert list(lake.read("reports")["published"]) == [dt.date(2023, 1, 15)]


def test_a_partition_with_string_dates_is_converted_when_a_load_rewrites_it(tmp_path):
    """A FORMAT 2 lake: a nightly load into one of its partitions keeps the old rows, as dates; a string
    that is no real day (older versions did not check) becomes null instead of failing the load."""
    lake = Lake(str(tmp_path))
    old = [bundle("a1", "甲区民政局", 2022, "2021", 10 + i, 2, fetched_at=f"2023-01-0{i + 1}") for i in range(2)]
    lake.write(old)
    _stringify_published(_part(tmp_path, "reports"), ["2023-01-15", "2023-02-30"])
    (tmp_path / FORMAT_FILE).write_text("2\n")
    new = bundle("a1", "甲区民政局", 2022, "2021", 99, 2, fetched_at="2023-03-01")
    new.report["published"] = "2023-03-01"
    lake.write([new])
    assert pq.read_table(_part(tmp_path, "reports")).schema.field("published").type == pa.date32()
    by_id = dict(lake.read("reports")[["report_id", "published"]].itertuples(index=False))
    assert by_id == {old[0].report["report_id"]: dt.date(2023, 1, 15), old[1].report["report_id"]: None,
                     new.report["report_id"]: dt.date(2023, 3, 1)}
    assert not lake.is_current_format()  # other partitions may still hold strings: the build reads by name

"""Tests for extract.sources: the registry file, its validation messages, region, allows and select."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from govreports.extract.sources import (
    COLUMNS,
    KINDS,
    LEVELS,
    Source,
    SourcesError,
    load_sources,
    region_matches,
    select,
)

HEADER = ",".join(COLUMNS)
ROOT = Path(__file__).resolve().parents[1]

# agency_id,name,province,city,county,township,level,kind,listing_urls,report_urls,hosts
YINZHOU = "330212-jtj,鄞州区交通运输局,浙江省,宁波市,鄞州区,,county,department,http://www.nbyz.gov.cn/col/col1/,,"
NINGBO = "330200-zf,宁波市人民政府,浙江省,宁波市,,,city,government,https://www.ningbo.gov.cn/col/col2/index.html,,"
QIJIAZI = (
    "211224-qjzz,七家子镇人民政府,辽宁省,铁岭市,昌图县,七家子镇,township,government,,"
    "http://changtu.gov.cn/a/2024/index.html,changtu.gov.cn www.changtu.gov.cn"
)


def write(tmp_path: Path, *lines: str, name: str = "sources.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def error(tmp_path: Path, *lines: str) -> str:
    path = write(tmp_path, *lines)
    with pytest.raises(SourcesError) as info:
        load_sources(path)
    return str(info.value).replace(str(path), "sources.csv")


def row(**changes: str) -> str:
    values = dict(zip(COLUMNS, YINZHOU.split(","), strict=True))
    values.update(changes)
    return ",".join(values[c] for c in COLUMNS)


# --- loading -------------------------------------------------------------------------------------


def test_loads_rows_with_comments_blank_lines_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "# registry", "", HEADER, YINZHOU, "  # a comment", "", NINGBO, QIJIAZI, bom=True)
    sources = load_sources(path)
    assert [s.agency_id for s in sources] == ["330212-jtj", "330200-zf", "211224-qjzz"]
    yinzhou = sources[0]
    assert yinzhou == Source(
        agency_id="330212-jtj", name="鄞州区交通运输局", province="浙江省", city="宁波市", county="鄞州区",
        township="", level="county", kind="department", listing_urls=("http://www.nbyz.gov.cn/col/col1/",),
        report_urls=(), hosts=("www.nbyz.gov.cn",),
    )
    assert sources[2].listing_urls == ()
    assert sources[2].report_urls == ("http://changtu.gov.cn/a/2024/index.html",)
    assert sources[2].hosts == ("changtu.gov.cn", "www.changtu.gov.cn")
    assert LEVELS == ("province", "city", "county", "township") and KINDS == ("government", "department")


def test_columns_in_any_order_and_several_urls(tmp_path: Path) -> None:
    header = "name,agency_id,level,kind,province,city,county,township,hosts,report_urls,listing_urls"
    line = ('宁波市人民政府,330200-zf,city,government,浙江省,宁波市,,,WWW.Ningbo.gov.cn  files.ningbo.gov.cn,'
            '"https://files.ningbo.gov.cn/2021.pdf",'
            '"https://www.ningbo.gov.cn:8443/a/  https://www.ningbo.gov.cn/b/ https://www.ningbo.gov.cn:8443/a/"')
    (source,) = load_sources(write(tmp_path, header, line))  # the repeated URL is dropped
    assert source.listing_urls == ("https://www.ningbo.gov.cn:8443/a/", "https://www.ningbo.gov.cn/b/")
    assert source.report_urls == ("https://files.ningbo.gov.cn/2021.pdf",)
    assert source.hosts == ("www.ningbo.gov.cn", "files.ningbo.gov.cn")


def test_url_list_over_several_lines_keeps_the_start_line(tmp_path: Path) -> None:
    quoted = row(listing_urls='"http://www.nbyz.gov.cn/a/\nhttp://www.nbyz.gov.cn/b/"')
    bad = row(agency_id="330212-x", level="town")
    msg = error(tmp_path, HEADER, quoted, bad)
    assert msg.startswith("sources.csv:4: unknown level 'town'")


def test_shipped_registry_loads() -> None:
    sources = load_sources(ROOT / "data" / "sources.csv")
    assert len(sources) >= 5
    for source in sources:
        assert source.listing_urls or source.report_urls
        assert all(source.allows(u) for u in source.listing_urls + source.report_urls)
        assert re.fullmatch(r"\d{6}-[a-z]+", source.agency_id)


# --- validation: each error names the file and line ----------------------------------------------


def test_missing_and_extra_columns(tmp_path: Path) -> None:
    header = HEADER.replace(",hosts", ",host").replace(",kind", "")
    msg = error(tmp_path, "# comment first", header, YINZHOU)
    assert msg.startswith("sources.csv:2: header: missing columns: kind, hosts; unexpected columns: host")


def test_duplicated_column(tmp_path: Path) -> None:
    assert "duplicated columns: name" in error(tmp_path, HEADER + ",name", YINZHOU + ",x")


def test_empty_file(tmp_path: Path) -> None:
    assert error(tmp_path, "# only a comment", "").startswith("sources.csv: no header")


def test_wrong_field_count(tmp_path: Path) -> None:
    assert error(tmp_path, HEADER, YINZHOU, YINZHOU[:-1]) == "sources.csv:3: expected 11 fields, found 10"


@pytest.mark.parametrize(
    ("agency_id", "problem"),
    [
        ("", "empty agency_id"),
        ("鄞州区", "agency_id '鄞州区' is not ASCII"),
        ("../etc", "agency_id '../etc' is not a safe id"),
        ("a/b", "agency_id 'a/b' is not a safe id"),
        ("-x", "agency_id '-x' is not a safe id"),
        ("a" * 65, "is not a safe id"),
        ("a..b", "agency_id 'a..b' contains '..'"),
        ("a b", "agency_id 'a b' is not a safe id"),
        ("a\x01b", "agency_id 'a\\x01b' is not a safe id"),
        ("a\x00b", "agency_id 'a\\x00b' is not a safe id"),
        ("x" * 300, "is not a safe id"),
    ],
)
def test_bad_agency_id(tmp_path: Path, agency_id: str, problem: str) -> None:
    msg = error(tmp_path, HEADER, NINGBO, row(agency_id=agency_id))
    assert msg.startswith("sources.csv:3: ") and problem in msg


def test_good_agency_ids(tmp_path: Path) -> None:
    ids = ["330212-jtj", "A.b_c-9", "9" * 64]
    assert [s.agency_id for s in load_sources(write(tmp_path, HEADER, *(row(agency_id=i) for i in ids)))] == ids


def test_duplicate_agency_id(tmp_path: Path) -> None:
    msg = error(tmp_path, HEADER, YINZHOU, NINGBO, "", row(name="别的局"))
    assert msg == "sources.csv:5: duplicate agency_id '330212-jtj' (first on line 2)"


def test_empty_name(tmp_path: Path) -> None:
    assert error(tmp_path, HEADER, row(name="  ")) == "sources.csv:2: empty name for agency_id '330212-jtj'"


def test_unknown_level_and_kind(tmp_path: Path) -> None:
    assert error(tmp_path, HEADER, row(level="District")).startswith("sources.csv:2: unknown level 'District'")
    assert error(tmp_path, HEADER, NINGBO, row(kind="bureau")).startswith("sources.csv:3: unknown kind 'bureau'")


def test_region_must_fit_the_level(tmp_path: Path) -> None:
    assert error(tmp_path, HEADER, row(county="")) == "sources.csv:2: level 'county' but the county column is empty"
    msg = error(tmp_path, HEADER, row(township="钟公庙街道"))
    assert msg == "sources.csv:2: level 'county' but township given (parts below the agency's own level)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("www.nbyz.gov.cn/col/", "is not an absolute http(s) URL"),
        ("/col/col1/", "is not an absolute http(s) URL"),
        ("ftp://www.nbyz.gov.cn/col/", "is not an absolute http(s) URL"),
        ("http:///col/col1/", "has no host"),
        ("http://[::1/col/", "is not a valid URL"),
        ("http://www.nbyz.gov.cn:port/", "is not a valid URL"),
    ],
)
def test_bad_url(tmp_path: Path, url: str, problem: str) -> None:
    msg = error(tmp_path, HEADER, YINZHOU, row(agency_id="x", report_urls=url))
    assert msg.startswith(f"sources.csv:3: report_urls: URL {url!r} ") and problem in msg


def test_no_url(tmp_path: Path) -> None:
    msg = error(tmp_path, HEADER, row(listing_urls="  "))
    assert msg == "sources.csv:2: no URL: give at least one listing_urls or report_urls value"


def test_url_host_not_in_hosts(tmp_path: Path) -> None:
    msg = error(tmp_path, HEADER, row(hosts="nbyz.gov.cn"))
    assert msg == ("sources.csv:2: listing_urls: URL 'http://www.nbyz.gov.cn/col/col1/': "
                   "host 'www.nbyz.gov.cn' is not in hosts (nbyz.gov.cn)")


def test_host_must_be_bare(tmp_path: Path) -> None:
    msg = error(tmp_path, HEADER, row(hosts="http://www.nbyz.gov.cn/"))
    assert msg.startswith("sources.csv:2: hosts: 'http://www.nbyz.gov.cn/' is not a bare host name")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "\n" + YINZHOU + "\n").encode("gb18030"))
    with pytest.raises(SourcesError, match=r"gbk\.csv:2: not UTF-8"):
        load_sources(path)


def test_malformed_csv_names_its_line(tmp_path: Path) -> None:
    msg = error(tmp_path, HEADER, "# comment", "", YINZHOU, row(agency_id="x", name='"a"b'))
    assert msg.startswith("sources.csv:5: malformed CSV")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "nope.csv")


def test_error_carries_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, row(level="x"))
    with pytest.raises(SourcesError) as info:
        load_sources(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert isinstance(info.value, ValueError)



def test_every_bad_row_is_reported(tmp_path: Path) -> None:
    """The file is checked as a whole: each bad row has its line, good rows between them are no stop."""
    message = error(tmp_path, HEADER, row(level="x"), NINGBO, YINZHOU + ",extra", row(agency_id="a/b"), NINGBO)
    lines = message.splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "4", "5", "6"]
    assert "unknown level 'x'" in lines[0] and "expected 11 fields, found 12" in lines[1]
    assert "not a safe id" in lines[2] and "duplicate agency_id '330200-zf' (first on line 3)" in lines[3]

# --- region, allows, select ----------------------------------------------------------------------


@pytest.fixture
def sources(tmp_path: Path) -> list[Source]:
    haishu = row(agency_id="330203-jtj", name="海曙区交通运输局", county="海曙区")
    hangzhou = "330100-zf,杭州市人民政府,浙江省,杭州市,,,city,government,https://www.hangzhou.gov.cn/col/,,"
    return load_sources(write(tmp_path, HEADER, YINZHOU, NINGBO, QIJIAZI, haishu, hangzhou))


def test_region(sources: list[Source]) -> None:
    assert [s.region for s in sources[:3]] == ["浙江省/宁波市/鄞州区", "浙江省/宁波市", "辽宁省/铁岭市/昌图县/七家子镇"]


def test_allows(sources: list[Source]) -> None:
    yinzhou, qijiazi = sources[0], sources[2]
    assert yinzhou.allows("http://www.nbyz.gov.cn/art/2021/1/1/art_1_2.html")
    assert yinzhou.allows("https://WWW.NBYZ.gov.cn:8080/x")  # case and port do not matter
    assert not yinzhou.allows("http://nbyz.gov.cn/x")
    assert not yinzhou.allows("http://www.nbyz.gov.cn.evil.com/x")
    assert not yinzhou.allows("http://evil.com/?u=http://www.nbyz.gov.cn/")
    assert not yinzhou.allows("/relative/path")
    assert not yinzhou.allows("http://[::1/")
    assert qijiazi.allows("http://www.changtu.gov.cn/") and qijiazi.allows("http://changtu.gov.cn/")


def test_select_by_agency(sources: list[Source]) -> None:
    assert select(sources) == sources
    assert [s.agency_id for s in select(sources, ["330200-zf", "330212-jtj"])] == ["330212-jtj", "330200-zf"]
    assert [s.agency_id for s in select(sources, "330200-zf")] == ["330200-zf"]
    assert select(sources, []) == []


def test_select_unknown_agencies(sources: list[Source]) -> None:
    with pytest.raises(SourcesError, match=r"unknown agency id\(s\): 'nope', 'x'"):
        select(sources, ["330200-zf", "nope", "x", "nope"])


def test_select_by_region(sources: list[Source]) -> None:
    def ids(region: str) -> list[str]:
        return [s.agency_id for s in select(sources, region=region)]

    assert ids("浙江省/宁波市") == ["330212-jtj", "330200-zf", "330203-jtj"]
    assert ids("浙江省/宁波市/") == ids("浙江省/宁波市")
    assert ids("浙江") == ["330212-jtj", "330200-zf", "330203-jtj", "330100-zf"]
    assert ids("鄞州区") == ["330212-jtj"]  # any one part, exactly
    assert ids("宁波市") == ["330212-jtj", "330200-zf", "330203-jtj"]
    assert ids("七家子镇") == ["211224-qjzz"]
    assert ids("鄞州") == []  # not a prefix of the path, not a whole part
    assert ids("") == [s.agency_id for s in sources]
    assert [s.agency_id for s in select(sources, ["330212-jtj", "330100-zf"], region="宁波市")] == ["330212-jtj"]


def test_region_matches_is_selects_rule(sources: list[Source]) -> None:
    # compare and every other --region call region_matches; tests/test_regions.py runs its table of cases
    for region in ("浙江省/宁波市", "宁波市", "浙江", "鄞州区", "鄞州", "  "):
        assert [s for s in sources if region_matches(s.region, region)] == (
            select(sources, region=region) if region.strip() else [])


def test_site_placeholder_is_filled_in_or_refused(tmp_path):
    from govreports.extract.sources import load_sources as load

    path = tmp_path / "demo.csv"
    path.write_text(
        "agency_id,name,province,city,county,township,level,kind,listing_urls,report_urls,hosts\n"
        "330212-jtj,鄞州区交通运输局,浙江省,宁波市,鄞州区,,county,department,{site}/yz/index.html,,127.0.0.1\n",
        encoding="utf-8",
    )
    [source] = load(path, site="http://127.0.0.1:8123/")
    assert source.listing_urls == ("http://127.0.0.1:8123/yz/index.html",)
    with pytest.raises(SourcesError, match="site"):
        load(path)

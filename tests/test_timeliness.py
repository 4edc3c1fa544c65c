"""Timeliness (issue 16): the publication date read from every metadata style a page uses, stored as a DATE,
and the `timeliness` views on a real warehouse: the deadline is 31 January of the next year (《政府信息公开条例》
第五十条), a page without a date is dated by the fetch log's first sighting of its URL and flagged."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re

import pandas as pd
import pytest

from govreports.extract.page import read_page
from govreports.extract.sources import Source
from govreports.flows.steps import PageRef, parse_page
from govreports.load.lake import Lake
from govreports.load.warehouse import build, connect
from tests.loadhelp import bundle, page
from tests.render import HTML_STYLES, STYLES, random_spec, render

TITLE = "<h1>示例区民政局2023年政府信息公开工作年度报告</h1>"
PERIOD = "<p>本报告所列数据的统计期限自2023年1月1日起至2023年12月31日止。</p>"


def html(head: str = "", above: str = "", below: str = "") -> str:
    return (f"<html><head><meta charset='utf-8'>{head}<title>年报</title></head><body>{above}{TITLE}{below}"
            f"{PERIOD}<p>2023年，本机关按要求做好公开工作。</p></body></html>")


BOX = ("<table><tr><td>索引号：</td><td>0001/2024-00002</td><td>发布机构：</td><td>示例区民政局</td></tr>"
       "<tr><td>{key}</td><td>{value}</td><td>文号：</td><td></td></tr></table>")

PAGES = {
    "box 发布日期": html(above=BOX.format(key="发布日期：", value="2024-01-15")),
    "box 公开日期 in a CMS tag": html(above=BOX.format(key="公开日期", value="<publishtime>2024-01-15</publishtime>")),
    "box 发布时间 with a time": html(above=BOX.format(key="发布时间", value="2024年01月15日 10:20")),
    "line 发布时间": html(above="<div class='info'><span>发布时间：2024年01月15日 10:20</span> 浏览次数：88</div>"),
    "line 日期 slashes": html(above="<p>日期:2024/1/15</p>"),
    "line 发布日期 dots": html(above="<p>【发布日期：2024.1.15】【字体：大 中 小】</p>"),
    "来源 then 时间": html(above="<p>来源：示例区人民政府办公室 时间：2024-01-15</p>"),
    "来源 then 时间, no space": html(above="<p>来源：示例区人民政府办公室时间：2024-01-15 09:00</p>"),
    "meta PubDate": html(head='<meta name="PubDate" content="2024-01-15 10:20:00">'),
    "meta publishdate": html(head='<meta name="publishdate" content="2024-01-15">'),
    "meta article:published_time": html(head='<meta property="article:published_time" '
                                             'content="2024-01-15T10:20:00+08:00">'),
    "a bare date under the title": html(below="<div>2024-01-15 10:20:31 浏览次数：12</div>"),
    "a Chinese date under the title": html(below="<p>2024年1月15日</p>"),
    "text rendering 来源 时间": "示例区民政局2023年政府信息公开工作年度报告\n"
                                "来源:示例区人民政府办公室 时间:2024-01-15\n一、总体情况\n本机关按要求做好公开工作。\n",
    "text rendering 成文日期": "索 引 号:0001/2024-00002\n发文机关: 示例区民政局\n成文日期: 2024-01-15\n"
                               "示例区民政局2023年政府信息公开工作年度报告\n",
}


@pytest.mark.parametrize("style", PAGES)
def test_every_metadata_style_gives_the_publication_date(style):
    assert read_page(PAGES[style]).published == "2024-01-15"


@pytest.mark.parametrize("page_html", [
    html(),  # no date anywhere: the statistics period is no publication date
    html(above="<p>采集时间：2025-12-30T21:37:37+08:00</p>"),  # a crawler's note
    html(head='<meta name="others" content="页面生成时间 2024-05-28 15:46:43">'),  # when the CMS rendered it
    html(above="<p>更新时间：2024-05-28</p><p>截止日期：2024-01-31</p>"),
    html(above=BOX.format(key="发布日期：", value="2024-02-30")),  # no such day
    html(below="<p>本报告由总体情况等部分组成。</p><p>统计期限自2023年1月1日起至2023年12月31日止</p>"),
], ids=["none", "采集时间", "页面生成时间", "更新 截止", "no such day", "a period under the title"])
def test_dates_that_are_not_the_publication_are_never_taken(page_html):
    assert read_page(page_html).published is None


def test_the_metadata_box_is_preferred_to_a_meta_tag_and_to_the_writing_date():
    both = html(head='<meta name="PubDate" content="2024-03-01">',
                above="<p>成文日期：2024-01-02</p>" + BOX.format(key="发布日期：", value="2024-01-15"))
    assert read_page(both).published == "2024-01-15"
    written = html(head='<meta name="PubDate" content="2024-03-01">', above="<p>成文日期：2024-01-02</p>")
    assert read_page(written).published == "2024-03-01"  # a stated publication before the day it was written


# -- the views, on a real warehouse ----------------------------------------------------------------------


def dated(agency_id: str, agency: str, year: int, published_line: str, region: str, fetched_at: str):
    """A report as the parse stage makes it from a text page that states its publication date on its own line."""
    data = published_line.encode() + b"\n" + page(agency, year, "2021", 5, 1)
    province, city, county = region.split("/")
    source = Source(agency_id, agency, province, city, county, "", "county", "department", (), (), ("127.0.0.1",))
    ref = PageRef(agency_id, f"http://127.0.0.1/{agency_id}/{year}.html", hashlib.sha256(data).hexdigest(), None,
                  pd.Timestamp(fetched_at, tz="UTC"))
    return parse_page(data, ref, source, pd.Timestamp.now(tz="UTC"))


YINZHOU, HAISHU = "浙江省/宁波市/鄞州区", "浙江省/宁波市/海曙区"


@pytest.fixture
def bundles():
    return [
        dated("a", "甲局", 2023, "发布日期：2024-01-31", YINZHOU, "2024-03-01"),  # the last day: on time
        dated("b", "乙局", 2023, "发布时间：2024年02月03日 10:20", YINZHOU, "2024-03-01"),  # 3 days late
        # No date on the page: the first sighting of its URL (20:00 UTC is the next day in China), flagged.
        bundle("c", "丙局", 2023, "2021", 5, 1, region=HAISHU, fetched_at="2024-02-09T20:00:00"),
        # Two versions of one URL: the current one (seen last) is dated by the URL's first sighting.
        bundle("d", "丁局", 2023, "2021", 5, 1, region=HAISHU, fetched_at="2024-01-20"),
        bundle("d", "丁局", 2023, "2021", 6, 1, region=HAISHU, fetched_at="2024-04-01"),
        dated("e", "戊局", 2022, "日期:2023/1/15", HAISHU, "2024-03-01"),
    ]


def q(db, sql):
    with connect(db) as con:
        return con.execute(sql).fetchall()


TIMELINESS = "SELECT agency_id, year, published, published_source, deadline, days_late, on_time FROM timeliness"
D = dt.date
EXPECTED = [
    ("a", 2023, D(2024, 1, 31), "page", D(2024, 1, 31), 0, True),
    ("b", 2023, D(2024, 2, 3), "page", D(2024, 1, 31), 3, False),
    ("c", 2023, D(2024, 2, 10), "first_seen", D(2024, 1, 31), 10, False),
    ("d", 2023, D(2024, 1, 20), "first_seen", D(2024, 1, 31), 0, True),
    ("e", 2022, D(2023, 1, 15), "page", D(2023, 1, 31), 0, True),
]


def test_the_timeliness_view_on_a_real_warehouse(tmp_path, bundles):
    lake = Lake(str(tmp_path / "parquet"))
    lake.write(bundles)
    db = build(lake, tmp_path / "g.duckdb")
    assert q(db, TIMELINESS + " ORDER BY agency_id") == EXPECTED
    assert q(db, "SELECT DISTINCT data_type FROM information_schema.columns "
                 "WHERE table_name IN ('reports', 'timeliness') AND column_name = 'published'") == [("DATE",)]
    by_region = "SELECT region, year, reports, on_time, late, dated_by_first_seen, share_on_time " \
                "FROM timeliness_by_region ORDER BY region, year"
    assert q(db, by_region) == [
        ("浙江省", 2022, 1, 1, 0, 0, 1.0), ("浙江省", 2023, 4, 2, 2, 2, 0.5),
        ("浙江省/宁波市", 2022, 1, 1, 0, 0, 1.0), ("浙江省/宁波市", 2023, 4, 2, 2, 2, 0.5),
        ("浙江省/宁波市/海曙区", 2022, 1, 1, 0, 0, 1.0), ("浙江省/宁波市/海曙区", 2023, 2, 1, 1, 2, 0.5),
        ("浙江省/宁波市/鄞州区", 2023, 2, 1, 1, 0, 0.5),
    ]


@pytest.mark.parametrize("style", STYLES)
def test_rendered_pages_give_their_box_date_and_no_other(style):
    """tests/render.py's pages: the CMS style's metadata box date; every other style states none, so
    none is read from its prose, tables or chrome."""
    for seed in range(4):
        spec = random_spec(random.Random(seed), empty_cells=False)
        data = render(spec, style, chrome_kb=8 if style in HTML_STYLES and style != "html_word" else 0)
        text = data.decode("gbk" if style == "html_gbk" else "utf-8")
        box = re.search(r"发布日期：</td><td>([\d-]+)<", text)
        assert read_page(text).published == (box.group(1) if box else None)
        assert (box is not None) == (style == "html_cms")

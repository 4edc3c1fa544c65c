"""Tests for extract.discover: listing pages -> report links, over a fake site (a dict). No network."""

from __future__ import annotations

import pytest

from govreports.extract.discover import (
    REPORT_KINDS,
    Link,
    discover,
    is_report_link,
    link_kind,
    link_year,
    may_link_files,
    parse_listing,
    report_files,
)
from govreports.extract.sources import Source

HOST = "http://www.hpq.gov.cn"
COLUMN = f"{HOST}/zfxxgk/bm/fgw/nb/"
INDEX = COLUMN + "index.html"


def page(body: str, head: str = "") -> str:
    return f"<html><head><title>政府信息公开年报</title>{head}</head><body>{body}</body></html>"


def source(listing: tuple[str, ...] = (INDEX,), reports: tuple[str, ...] = (), hosts: tuple[str, ...] = ()) -> Source:
    return Source(
        agency_id="120101-fgw", name="和平区发展改革委", province="天津市", city="", county="和平区", township="",
        level="county", kind="department", listing_urls=listing, report_urls=reports,
        hosts=hosts or ("www.hpq.gov.cn", "files.hpq.gov.cn"),
    )


# The column's first page: every kind of link a listing carries, and TRS pagination declared in JavaScript.
FIRST = page(
    """
    <div class="nav"><a href="/">首页</a> &gt; <a href="./">政府信息公开年报</a> <a href="#top">顶部</a></div>
    <ul>
      <li><a href="./202201/t20220120_501.html" target="_blank">和平区发展改革委 2021年度
          政府信息公开工作年度报告</a><span>2022-01-20</span></li>
      <li><a href="http://www.hpq.gov.cn/zfxxgk/bm/fgw/nb/202101/t20210125_402.html#p1"
             title="和平区发展改革委2020年度政府信息公开工作年度报告">和平区发展改革委2020年度政府信息...</a></li>
      <li><a href="/uploads/2020/nb2019.pdf">附件：2019年政府信息公开工作年度报告.pdf</a></li>
      <li><a href="../../../../images/nb2018.JPG"><img src="x.png" alt="2018年政府信息公开年报"></a></li>
      <li><a href="./202001/t20200110_9.html">關於報送2019年度政府信息公開工作年度報告的通知</a></li>
      <li><a href="/zfxxgk/znml/">政府信息公开指南</a></li>
      <li><a href="./201901/t20190128_7.html">和平区发展改革委2018年政府信息公開工作年度報告</a></li>
      <li><a href="http://www.other.gov.cn/nb/2021.html">某区2021年政府信息公开工作年度报告</a></li>
      <li><a href="javascript:void(0)">2016年政府信息公开工作年度报告</a></li>
      <li><a href="mailto:fgw@hpq.gov.cn">2015年政府信息公开工作年度报告</a></li>
      <li><a href="#">2014年政府信息公开工作年度报告</a></li>
    </ul>
    <div class="page"><a href="index_1.html">下一页 &gt;</a> <a href="index_2.html">尾页</a></div>
    <script>createPageHTML(3, 0, "index", "html");</script>
    """
)

# Page 2: numbered links back to page 1 (a cycle) and on to page 3; a numbered link to another host.
SECOND = page(
    """
    <a href="t2017/t20180131_3.html">二〇一七年度政府信息公开工作年度报告</a>
    <a href="./202201/t20220120_501.html">和平区发展改革委2021年度政府信息公开工作年度报告（重复）</a>
    <div class="page"><a href="index.html">1</a> <span>2</span> <a href="index_2.html">3</a>
      <a href="http://www.other.gov.cn/list_4.html">4</a> <a href="index.html">«</a></div>
    <script>createPageHTML(3, 1, "index", "html");</script>
    """
)


def site() -> dict[str, str | None]:
    return {INDEX: FIRST, COLUMN + "index_1.html": SECOND, COLUMN + "index_2.html": None}


class Fetcher:
    """get_text over a dict; records every URL asked for."""

    def __init__(self, pages: dict[str, str | None]) -> None:
        self.pages = pages
        self.calls: list[str] = []

    def __call__(self, url: str) -> str | None:
        self.calls.append(url)
        return self.pages.get(url)


# --- link texts, years, kinds --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2021年度政府信息公开工作年度报告",
        "宁波市鄞州区交通运输局2020年政府信息公开工作年度报告",
        "鄞州区交通运输局政府信息公开工作年度报告",
        "2022年政府信息公开年报",
        "政府信息公开工作年度报告（2023年）",
        "2019年度信息公开年报",
        "和平区2021年政务信息公开工作报告",
        "2024年政府信息公開工作年度報告",
        "二〇二一年度政府信息公开工作年度报告",
        "2022年度报告",
        "附件：2019年政府信息公开工作年度报告.pdf",
    ],
)
def test_report_texts(text: str) -> None:
    assert is_report_link(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "政府信息公开年报",  # the column's own name: no agency, no year
        "政府信息公开工作年度报告",
        "关于报送2021年度政府信息公开工作年度报告的通知",
        "關於報送2021年度政府信息公開工作年度報告的通知",
        "政府信息公开工作年度报告格式",
        "关于政府信息公开工作年度报告有关事项的要求",
        "中华人民共和国政府信息公开条例",
        "政府信息公开指南",
        "政府信息公开目录",
        "2021年度政府信息公开工作年度报告解读",
        "2021年法治政府建设年度报告",
        "2021年度部门决算",
        "下一页",
    ],
)
def test_not_report_texts(text: str) -> None:
    assert not is_report_link(text)


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("2021年度政府信息公开工作年度报告", 2021),
        ("政府信息公开工作年度报告（2023）", 2023),
        ("和平区2022 年政府信息公开年报 2023-01-20", 2022),  # the listing's date is the publication date
        ("政府信息公开工作年度报告 2023-01-20", None),
        ("2023年1月20日发布的政府信息公开工作年度报告", None),
        ("二〇二一年度政府信息公开工作年度报告", 2021),
        ("二O二二年度政府信息公开工作年度报告", 2022),  # a Latin O for the zero
        ("一一一一年", None),
        ("２０２０年政府信息公开工作年度报告", 2020),  # full-width digits
        ("鄞州区交通运输局政府信息公开工作年度报告", None),
    ],
)
def test_link_year(text: str, year: int | None) -> None:
    assert link_year(text) == year


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://a.gov.cn/nb/202201/t20220120_1.html", "report"),
        ("http://a.gov.cn/art/2023/1/11/art_1_2.shtml", "report"),
        ("http://a.gov.cn/nb/", "report"),
        ("http://a.gov.cn/up/2021.PDF", "file"),
        ("http://a.gov.cn/up/2021.docx", "file"),
        ("http://a.gov.cn/up/2021.wps", "file"),
        ("http://a.gov.cn/up/2021.ofd", "attachment"),
        ("http://a.gov.cn/up/2021.rar", "attachment"),
        ("http://a.gov.cn/module/download/downfile.jsp?classid=0&filename=2101.pdf", "file"),
        ("http://a.gov.cn/up/2021.xlsx", "attachment"),
        ("http://a.gov.cn/up/2021.jpeg", "image"),
        ("http://a.gov.cn/up/2021.png", "image"),
    ],
)
def test_link_kind(url: str, kind: str) -> None:
    assert link_kind(url) == kind
    assert kind in REPORT_KINDS


# --- parse_listing -------------------------------------------------------------------------------


def test_parse_listing_reports_and_pages() -> None:
    reports, pages = parse_listing(FIRST, INDEX)
    assert reports == [
        (COLUMN + "202201/t20220120_501.html", "和平区发展改革委 2021年度 政府信息公开工作年度报告"),
        (COLUMN + "202101/t20210125_402.html", "和平区发展改革委2020年度政府信息公开工作年度报告"),  # from title
        (f"{HOST}/uploads/2020/nb2019.pdf", "附件：2019年政府信息公开工作年度报告.pdf"),
        (f"{HOST}/images/nb2018.JPG", "2018年政府信息公开年报"),  # image alt text
        (COLUMN + "201901/t20190128_7.html", "和平区发展改革委2018年政府信息公開工作年度報告"),
        ("http://www.other.gov.cn/nb/2021.html", "某区2021年政府信息公开工作年度报告"),  # discover drops it
    ]
    assert pages == [COLUMN + "index_1.html", COLUMN + "index_2.html"]


def test_parse_listing_numbered_pages_same_host_only() -> None:
    reports, pages = parse_listing(SECOND, COLUMN + "index_1.html")
    assert [url for url, _ in reports] == [COLUMN + "t2017/t20180131_3.html", COLUMN + "202201/t20220120_501.html"]
    assert pages == [INDEX, COLUMN + "index_2.html"]


def test_parse_listing_base_href() -> None:
    text = page(
        '<a href="202301/t1.html">2022年度政府信息公开工作年度报告</a><a href="list_2.html">下页</a>'
        '<a href="/abs/2021.pdf">2021年度政府信息公开工作年度报告</a>',
        head='<base href="http://www.hpq.gov.cn/other/dir/">',
    )
    reports, pages = parse_listing(text, f"{HOST}/zfxxgk/list.jsp?id=1")
    assert [u for u, _ in reports] == [f"{HOST}/other/dir/202301/t1.html", f"{HOST}/abs/2021.pdf"]
    assert pages == [f"{HOST}/other/dir/list_2.html"]


@pytest.mark.parametrize(
    ("script", "url", "expected"),
    [
        ('createPageHTML(4, 0, "index", "html");', INDEX, ["index_1.html", "index_2.html", "index_3.html"]),
        ("createPageHTML('page_div', 3, 1, 'index', 'shtml', 41);", COLUMN + "index_1.shtml", ["index_2.shtml"]),
        ('createPageHTML(3, 0, "index", "html");', COLUMN, ["index_1.html", "index_2.html"]),  # the directory
        ("var countPage = 3; var currentPage = 0;", INDEX, ["index_1.html", "index_2.html"]),
        ("var countPage = '2'", COLUMN + "list.shtml", ["list_1.shtml"]),
        ("var countPage = 1;", INDEX, []),
        ('createPageHTML(5, 0, "index", "html");', f"{HOST}/list.jsp?page=1", []),  # not the series' URL
        ("function createPageHTML(_nPageCount, _nCurrIndex, _sPageName, _sPageExt) {}", INDEX, []),
    ],
)
def test_parse_listing_declared_page_count(script: str, url: str, expected: list[str]) -> None:
    _, pages = parse_listing(page(f"<script>{script}</script>"), url)
    assert pages == [COLUMN + name for name in expected]


def test_parse_listing_hanweb_records() -> None:
    text = page(
        '<div id="1"><script type="text/xml"><datastore><recordset>'
        '<record><![CDATA[<li><a href="/art/2023/1/11/art_19989_954075.html" title="京山市卫生健康局2022年'
        '政府信息公开工作年度报告">京山市卫生健康局2022年政府...</a></li>]]></record>'
        '<record><![CDATA[<li><a href="/art/2022/1/5/art_19989_9.html">关于做好年度报告编制的通知</a></li>]]></record>'
        "</recordset></datastore></script></div>"
    )
    reports, _ = parse_listing(text, "http://www.jingshan.gov.cn/col/col19989/index.html")
    assert reports == [
        ("http://www.jingshan.gov.cn/art/2023/1/11/art_19989_954075.html",
         "京山市卫生健康局2022年政府信息公开工作年度报告"),
    ]


@pytest.mark.parametrize(
    "text", ["", "   ", "plain text, no links", '<?xml version="1.0" encoding="utf-8"?><html><body></body></html>']
)
def test_parse_listing_without_links(text: str) -> None:
    assert parse_listing(text, INDEX) == ([], [])


# --- discover ------------------------------------------------------------------------------------


def test_discover_follows_pages_once_and_stays_on_hosts() -> None:
    fetch = Fetcher(site())
    links = discover(source(), fetch)
    # index.html, then index_1.html (下一页) and index_2.html (尾页, failed); the cycle back to index.html and
    # the other host's page 4 are never fetched.
    assert fetch.calls == [INDEX, COLUMN + "index_1.html", COLUMN + "index_2.html"]
    # Year and agency come from the link text where it names them (traditional characters and years in
    # Chinese numerals too); 附件：… names no agency, and 二〇一七年度 is a year, not an agency.
    agency = "和平区发展改革委"
    assert links == [
        Link(COLUMN + "202201/t20220120_501.html", "和平区发展改革委 2021年度 政府信息公开工作年度报告",
             "120101-fgw", 2021, "report", INDEX, agency),
        Link(COLUMN + "202101/t20210125_402.html", "和平区发展改革委2020年度政府信息公开工作年度报告",
             "120101-fgw", 2020, "report", INDEX, agency),
        Link(f"{HOST}/uploads/2020/nb2019.pdf", "附件：2019年政府信息公开工作年度报告.pdf",
             "120101-fgw", 2019, "file", INDEX, None),
        Link(f"{HOST}/images/nb2018.JPG", "2018年政府信息公开年报", "120101-fgw", 2018, "image", INDEX, None),
        Link(COLUMN + "201901/t20190128_7.html", "和平区发展改革委2018年政府信息公開工作年度報告",
             "120101-fgw", 2018, "report", INDEX, agency),
        Link(COLUMN + "t2017/t20180131_3.html", "二〇一七年度政府信息公开工作年度报告",
             "120101-fgw", 2017, "report", COLUMN + "index_1.html", None),
    ]


def test_discover_max_pages() -> None:
    fetch = Fetcher(site())
    links = discover(source(), fetch, max_pages=1)
    assert fetch.calls == [INDEX]
    assert len(links) == 5
    assert discover(source(), Fetcher(site()), max_pages=0) == []


def test_discover_years() -> None:
    links = discover(source(reports=(f"{HOST}/direct/nb.html",)), Fetcher(site()), years={2018, 2021})
    assert [(link.year, link.url.rsplit("/", 1)[-1]) for link in links] == [
        (2021, "t20220120_501.html"), (2018, "nb2018.JPG"), (2018, "t20190128_7.html"), (None, "nb.html"),
    ]
    assert discover(source(), Fetcher(site()), years=[]) == []


def test_discover_report_urls() -> None:
    found = COLUMN + "202201/t20220120_501.html"
    direct = (f"{HOST}/direct/2023.pdf#page=2", found, "http://www.other.gov.cn/2023.html", f"{HOST}/direct/2023.pdf")
    links = discover(source(reports=direct), Fetcher(site()))
    by_url = {link.url: link for link in links}
    assert len(by_url) == len(links) == 7
    assert by_url[found].listing_url == INDEX and by_url[found].year == 2021  # found on the listing first
    assert by_url[f"{HOST}/direct/2023.pdf"] == Link(f"{HOST}/direct/2023.pdf", "", "120101-fgw", None,
                                                     "file", "")
    assert "http://www.other.gov.cn/2023.html" not in by_url  # not among the source's hosts


def test_discover_report_urls_only() -> None:
    fetch = Fetcher({})
    links = discover(source(listing=(), reports=(f"{HOST}/a/2022.html",)), fetch)
    assert fetch.calls == []
    assert links == [Link(f"{HOST}/a/2022.html", "", "120101-fgw", None, "report", "")]


def test_discover_failed_listing_and_foreign_listing() -> None:
    fetch = Fetcher({INDEX: None})
    other = "http://www.other.gov.cn/nb/index.html"
    assert discover(source(listing=(INDEX, other, INDEX)), fetch) == []
    assert fetch.calls == [INDEX]  # the foreign listing is never fetched, the repeated one once


def test_discover_several_listings_breadth_first() -> None:
    second_column = f"{HOST}/zfxxgk/bm/fgw/nb2/"
    pages = site() | {
        second_column: page('<a href="t1.html">2023年度政府信息公开工作年度报告</a><a href="index_1.html">下一页</a>'),
        second_column + "index_1.html": page('<a href="t0.html">2022年度政府信息公开工作年度报告</a>'),
    }
    fetch = Fetcher(pages)
    links = discover(source(listing=(INDEX, second_column)), fetch)
    assert fetch.calls == [INDEX, second_column, COLUMN + "index_1.html", COLUMN + "index_2.html",
                           second_column + "index_1.html"]
    assert {link.url for link in links} >= {second_column + "t1.html", second_column + "t0.html"}


# --- report_files: a report page's links to its report as a file ------------------------------------

PAGE = "http://a.gov.cn/nb/202301/t20230120_1.html"
TITLE = "和平区发展改革委2022年政府信息公开工作年度报告"


def _page(body: str, title: str = TITLE) -> str:
    return f'<html><head><meta charset="utf-8"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>'


def test_report_files_named_as_the_report() -> None:
    body = (f'<p>附件：<a href="/up/P020230120.pdf">{TITLE}.pdf</a></p>'  # names 报告
            '<p><a href="/up/2022%E5%B9%B4%E6%8A%A5.docx">下载</a></p>'  # its file name (2022年报) names it
            '<p><a href="/up/x.wps" title="和平区发展改革委2022年政府信息公开工作年度报告">正文</a></p>'
            '<p><a href="/up/notice.pdf">关于报送2022年度政府信息公开工作年度报告的通知.pdf</a></p>'  # a notice
            f'<p><a href="/up/data.xls">{TITLE}附表.xls</a></p>'  # a spreadsheet: not a report file
            f'<p><a href="/up/P020230120.pdf#page=2">{TITLE}.pdf</a></p>')  # the same file again
    assert report_files(_page(body), PAGE) == [
        ("http://a.gov.cn/up/P020230120.pdf", f"{TITLE}.pdf"),
        ("http://a.gov.cn/up/2022%E5%B9%B4%E6%8A%A5.docx", "下载"),
        ("http://a.gov.cn/up/x.wps", f"正文 {TITLE}"),
    ]


def test_the_only_file_of_a_page_without_a_report_table_is_its_report() -> None:
    body = '<p>附件：<a href="/up/P020230120.pdf">点击下载</a></p>'
    assert report_files(_page(body), PAGE) == [("http://a.gov.cn/up/P020230120.pdf", "点击下载")]
    layout = "<table><tr><td>首页</td><td>政务公开</td></tr></table>"  # a layout table is no report table
    assert report_files(_page(layout + body), PAGE) == [("http://a.gov.cn/up/P020230120.pdf", "点击下载")]
    # With a report table, or beside another unnamed file, an unnamed file may be anything.
    table = "<table>" + "<tr><td>1</td><td>2</td><td>3</td><td>4</td></tr>" * 10 + "</table>"
    assert report_files(_page(table + body), PAGE) == []
    assert report_files(_page(body + '<a href="/up/P2.doc">下载</a>'), PAGE) == []
    # The listing's link text stands for the page's title: a file that repeats it is the report.
    assert report_files(_page('<a href="/up/a.pdf">沭阳县2022年度</a>', title="x"), PAGE, "沭阳县2022年度") == [
        ("http://a.gov.cn/up/a.pdf", "沭阳县2022年度")]
    assert report_files("", PAGE) == [] and report_files(_page(""), PAGE) == []


@pytest.mark.parametrize(("data", "may"), [
    (b'<a href="/up/a.PDF">', True), (b"downfile.jsp?filename=a.docx&x=1", True), (b'<a href="a.doc">', True),
    (b'"a.wps"', True), (b'<a href="a.pdfa">', False), (b'<a href="a.xls">', False), (b"<p>pdf</p>", False),
])
def test_may_link_files_skips_pages_that_name_no_report_file(data: bytes, may: bool) -> None:
    # An unchanged page is read again for its files only when its bytes name a report file's extension.
    assert may_link_files(data) is may

"""From an agency's annual-report column (listing pages) to the links of its reports.

Listing pages are read with lxml; a link counts as a report when its text (or title, or image alt text) names
an annual report on open government information. Pagination is followed through 下一页-style and numbered
links, the TRS pattern index.html -> index_1.html … (page count declared in JavaScript), and the records
Hanweb sites embed as CDATA. Links to report files (PDF, Word, WPS) are fetched like pages; other attachments
and images are kept, with their kind, so that a report published only as a scan is visible as not yet
readable rather than silently missing. From a fetched report page, `report_files` picks its links to the
report as a file (附件：…报告.pdf).

Nothing here fetches: discover() is given a get_text(url) callable.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from posixpath import splitext
from urllib.parse import parse_qsl, unquote, urldefrag, urljoin, urlsplit

import lxml.html
from lxml import etree

from govreports.extract.chinese import CN_YEAR_DIGITS, cn_digits, simplify
from govreports.extract.page import title_agency
from govreports.extract.sources import Source
from govreports.extract.textcache import text_cache

REPORT_KINDS = ("report", "file", "attachment", "image")
FETCHED_KINDS = ("report", "file")  # the kinds of link the crawl fetches; the others are recorded only
# A file extension -> the kind of link it makes (anything else is a report page). A report file is read
# (extract.document); spreadsheets, archives and OFD are not.
_KIND_OF_EXTENSION = (dict.fromkeys((".pdf", ".doc", ".docx", ".wps"), "file")
                      | dict.fromkeys((".xls", ".xlsx", ".zip", ".rar", ".ofd"), "attachment")
                      | dict.fromkeys((".jpg", ".jpeg", ".png", ".gif", ".bmp"), "image"))

# The report's name: 政府信息公开(工作)(年度)报告 / 年报, also 政务信息公开…, after simplification.
_REPORT_WORDS = re.compile(r"(?:政府|政务)?信息公开.{0,12}?(?:年度报告|年报|报告)")
# Columns titled by year only ("2021年度报告", "2022年年报") name their reports that way too.
_YEAR_ONLY_REPORT = re.compile(r"(?:19|20)\d\d年?度?(?:工作)?(?:年度报告|年报)")
# Titles about reports that are not reports: notices asking for them, guidelines, formats, readings of them.
NOT_REPORT_WORDS: tuple[str, ...] = (
    "通知", "通报", "报送", "要求", "条例", "规定", "指南", "目录", "格式", "模板", "范本",
    "解读", "办法", "意见", "方案", "制度", "要点", "培训", "考核", "评估",
)
_PUNCTUATION = re.compile(r"[\s\W_]+")
# A year in the text: 2021年 / 2021年度 / (2021), but not a date (2023-01-11, 2023年1月11日).
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*年(?!\s*\d{1,2}\s*月)|(?![\d\-/.年]))")
_CN_YEAR = re.compile(rf"({CN_YEAR_DIGITS})\s*年")

# Pagination link texts (simplified, lower-case, without spaces and arrows); previous and last pages are
# listing pages too, and visiting them twice is prevented by discover().
PAGE_WORDS = frozenset(
    ("下一页", "下页", "后页", "上一页", "上页", "前页", "尾页", "末页", "最后一页", "next", "nextpage", "prev",
     "previous")
)
_ARROWS = " <>›‹»«→←"
_PAGE_NUMBER = re.compile(r"[\[(【]?第?(\d{1,4})页?[\])】]?")
_SKIP_HREF = re.compile(r"^\s*(?:#|javascript:|mailto:|tel:|data:)", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# TRS: createPageHTML(count, current, "index", "html"), newer versions with a leading div id and a trailing total.
_CREATE_PAGE_HTML = re.compile(r"createPageHTML\s*\(([^()]*)\)")
_COUNT_PAGE = re.compile(r"\bcountPage\s*=\s*[\"']?(\d+)")
_PAGED_NAME = re.compile(r"([A-Za-z][\w-]*?)(?:_\d+)?\.(s?html?)")
MAX_GENERATED_PAGES = 1000  # a declared page count beyond this is a broken template, not a listing
# Hanweb: the first records of a column sit in <record><![CDATA[<a href=…>]]></record> inside a script.
_HANWEB_RECORD = re.compile(r"<record>\s*<!\[CDATA\[(.*?)\]\]>\s*</record>", re.S | re.I)


@dataclass(frozen=True, slots=True)
class Link:
    url: str  # absolute, fragment removed
    text: str  # the link's text (or its title / image alt text), whitespace-collapsed; "" for a direct report URL
    agency_id: str
    year: int | None  # from the text only: URLs carry the publication date, usually the year after
    kind: str  # one of REPORT_KINDS
    listing_url: str  # the listing page it was found on; "" for a direct report URL
    agency: str | None = None  # the agency the text names (a portal's listing links many agencies' reports)
    linked_from: str | None = None  # the report page that links this file; None for a listing's links


def _collapse(text: str | None) -> str:
    return " ".join((text or "").split())


def link_year(text: str) -> int | None:
    """The report year a link text names ("2021年度政府信息公开…" -> 2021; 二〇二一年 too), else None."""
    s = simplify(text)
    m = _YEAR.search(s)
    if m:
        return int(m.group(1))
    m = _CN_YEAR.search(s)
    year = int(cn_digits(m.group(1))) if m else None
    return year if year is not None and 1900 <= year < 2100 else None  # 一一一一年 is no year


@text_cache(maxsize=8192)  # a site's navigation repeats on every listing page of every agency
def is_report_link(text: str) -> bool:
    """Whether a link text names an annual report on open government information (traditional characters too).

    Notices and guidelines about the reports are not reports; neither is a bare column name such as
    "政府信息公开年报" (no year, no agency), which is how navigation links to the column itself read."""
    s = _PUNCTUATION.sub("", simplify(text))
    if not s or any(w in s for w in NOT_REPORT_WORDS):
        return False
    if _YEAR_ONLY_REPORT.fullmatch(s):
        return True
    m = _REPORT_WORDS.search(s)
    if not m:
        return False
    return bool(s[: m.start()]) or link_year(text) is not None


def link_kind(url: str) -> str:
    """report (an HTML page), file (PDF, Word, WPS), attachment (Excel, archives, OFD) or image, from the URL's
    path, or from a file name in its query (download scripts such as downfile.jsp?filename=x.pdf)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "report"
    extensions = (splitext(c.lower().rstrip("/"))[1] for c in [parts.path, *(v for _, v in parse_qsl(parts.query))])
    return next((_KIND_OF_EXTENSION[e] for e in extensions if e in _KIND_OF_EXTENSION), "report")


def _parse(text: str) -> etree._Element | None:
    text = _XML_DECLARATION.sub("", text)  # lxml refuses str input that declares an encoding
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


@lru_cache(maxsize=4096)  # a listing repeats its navigation's links, and a site its listings'
def _absolute(href: str | None, base: str) -> str | None:
    if not href or _SKIP_HREF.match(href):
        return None
    href = re.sub(r"[\t\r\n]", "", href).strip()  # browsers drop these inside URLs
    try:
        url = urldefrag(urljoin(base, href)).url
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _anchor_texts(a: etree._Element) -> list[str]:
    """What a link says, in order of preference: its text, its title, the alt text of an image inside it."""
    # lxml's C text serialiser: text_content() would be an XPath call per link.
    texts = [_collapse(etree.tostring(a, method="text", encoding=str, with_tail=False)), _collapse(a.get("title"))]
    texts += [_collapse(img.get("alt")) for img in a.iter("img")]
    return [t for t in texts if t]


def _is_page_link(texts: list[str]) -> bool:
    for text in texts:
        s = simplify(text).lower()
        core = s.strip(_ARROWS).replace(" ", "")
        if core in PAGE_WORDS or _PAGE_NUMBER.fullmatch(core) or (not core and s.strip()):
            return True  # not core and s.strip(): arrows only, such as › or »
    return False


def _declared_pages(text: str, page_url: str) -> list[str]:
    """index_1.html … index_{n-1}.html when the page declares n pages in JavaScript (TRS and similar CMSs)."""
    last = urlsplit(page_url).path.rsplit("/", 1)[-1]
    count, prefix, ext = 0, "", ""
    for m in _CREATE_PAGE_HTML.finditer(text):
        args = [a.strip().strip("'\"").strip() for a in m.group(1).split(",")]
        if args and not args[0].isdigit():
            args = args[1:]  # the leading div id of newer versions
        if len(args) >= 4 and args[0].isdigit() and args[1].isdigit() and args[2] and args[3]:
            count, prefix, ext = int(args[0]), args[2], args[3]
            break
    if not count and (m := _COUNT_PAGE.search(text)):
        named = _PAGED_NAME.fullmatch(last)
        count, (prefix, ext) = int(m.group(1)), named.groups() if named else ("index", "html")
    # Only where the page is itself one of the series (or the directory serving its first page).
    if count < 2 or not (last == "" or re.fullmatch(re.escape(prefix) + r"(?:_\d+)?\." + re.escape(ext), last)):
        return []
    return [urljoin(page_url, f"{prefix}_{k}.{ext}") for k in range(1, min(count, MAX_GENERATED_PAGES))]


def _anchor_roots(text: str) -> list[etree._Element]:
    """The page's tree, and one of the Hanweb records it embeds, if any."""
    records = _HANWEB_RECORD.findall(text)
    hanweb = "<html><body>" + "\n".join(records) + "</body></html>" if records else ""
    return [root for root in (_parse(text), _parse(hanweb)) if root is not None]


def parse_listing(text: str, base_url: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The report links of a listing page, as (absolute URL, link text), and its other listing pages (absolute
    URLs, same host as the page), each in document order without repeats. `text` is the decoded page."""
    page_url = urldefrag(base_url).url
    page_host = urlsplit(page_url).hostname
    reports: dict[str, str] = {}
    pages: dict[str, None] = {}
    for root in _anchor_roots(text):
        base_href = next((b.get("href") for b in root.iter("base")), None)
        base = urljoin(page_url, base_href.strip()) if base_href else page_url
        for a in root.iter("a"):
            url = _absolute(a.get("href"), base)
            if url is None or url == page_url:
                continue
            texts = _anchor_texts(a)
            named = next((t for t in texts if is_report_link(t)), None)
            if named is not None:
                reports.setdefault(url, named)
            elif _is_page_link(texts) and urlsplit(url).hostname == page_host:
                pages.setdefault(url, None)
    for url in _declared_pages(text, page_url):
        if url != page_url:
            pages.setdefault(url, None)
    return list(reports.items()), [u for u in pages if u not in reports]


def discover(
    source: Source,
    get_text: Callable[[str], str | None],
    years: Collection[int] | None = None,
    max_pages: int = 50,
) -> list[Link]:
    """The report links of one agency: its listing pages followed breadth-first (each URL fetched at most once,
    only on the agency's allowed hosts, at most `max_pages` fetches), then its direct report URLs.

    `get_text(url)` returns the decoded page, or None when the fetch failed (the page is skipped). Links are
    unique by URL (the first found wins). With `years`, links of other years are dropped; links whose year is
    unknown are kept."""
    links: dict[str, Link] = {}
    queue = deque(dict.fromkeys(urldefrag(u).url for u in source.listing_urls))
    queued = set(queue)
    fetched = 0
    while queue and fetched < max_pages:
        url = queue.popleft()
        if not source.allows(url):
            continue
        fetched += 1  # a failed fetch still costs a request
        text = get_text(url)
        if text is None:
            continue
        reports, pages = parse_listing(text, url)
        for report_url, link_text in reports:
            if source.allows(report_url) and report_url not in links:
                links[report_url] = Link(report_url, link_text, source.agency_id, link_year(link_text),
                                         link_kind(report_url), url, title_agency(link_text))
        for page in pages:
            if page not in queued and source.allows(page):
                queued.add(page)
                queue.append(page)
    for report_url in source.report_urls:
        report_url = urldefrag(report_url).url
        if source.allows(report_url) and report_url not in links:
            links[report_url] = Link(report_url, "", source.agency_id, None, link_kind(report_url), "")
    wanted = None if years is None else set(years)
    return [link for link in links.values() if wanted is None or link.year is None or link.year in wanted]


# A file a report page links is its report when the link's text or file name names one (报告, 年报) and no
# notice word, or names the page's title; or, on a page with no report table, when it is the page's only
# report file. Fewer cells than this is a layout table, not a report table (the smallest, 二, has about 40).
_FILE_NAMES_REPORT = re.compile(r"报告|年报")
# A page's bytes that name no file extension of a report file link none: most pages, skipped unparsed.
_FILE_EXTENSION = re.compile(
    rb"\.(?:" + b"|".join(e[1:].encode() for e, k in _KIND_OF_EXTENSION.items() if k == "file") + rb")\b", re.I)
_REPORT_TABLE_CELLS = 30


def may_link_files(data: bytes) -> bool:
    """Whether a page's bytes (any ASCII-compatible encoding) name a report file's extension at all."""
    return _FILE_EXTENSION.search(data) is not None


def report_files(text: str, page_url: str, title: str | None = None) -> list[tuple[str, str]]:
    """The links of a report page to its report as a file (PDF, Word, WPS), as (absolute URL, link text),
    in document order without repeats; not its other files (a notice, a form, a spreadsheet). `title`: the
    report's name (the listing link's text), else the page's <title>."""
    root = _parse(text)
    if root is None:
        return []
    page_url = urldefrag(page_url).url
    files: dict[str, str] = {}
    for a in root.iter("a"):
        url = _absolute(a.get("href"), page_url)
        if url is not None and url != page_url and link_kind(url) == "file":
            files.setdefault(url, " ".join(_anchor_texts(a)))
    wanted = _PUNCTUATION.sub("", simplify(title or root.findtext(".//title") or ""))
    named, candidates = [], []
    for url, link_text in files.items():
        words = _PUNCTUATION.sub("", simplify(f"{link_text} {unquote(urlsplit(url).path.rsplit('/', 1)[-1])}"))
        if any(w in words for w in NOT_REPORT_WORDS):
            continue
        candidates.append((url, link_text))
        if _FILE_NAMES_REPORT.search(words) or (wanted and wanted in words):
            named.append((url, link_text))
    if named or len(candidates) != 1:
        return named
    tables = (sum(1 for _ in t.iter("td", "th")) for t in root.iter("table"))
    return candidates if all(n < _REPORT_TABLE_CELLS for n in tables) else []

"""A decoded page -> a Document: its tables, its visible text, its metadata box, and who published it for
which year, as the page itself says (the final agency and year are decided in transform/report.py).

The page chrome (navigation, share bars, footers) is left in the visible text and among the tables:
the table reader keeps only what it recognises as report content. The metadata box (索引号,
发布机构, 发布日期) is a table too, but not a report table: it is read here and set aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from lxml import etree

from govreports.extract.cells import MAX_PAGE_TAGS, Budget, ParseFailure, Table
from govreports.extract.chinese import CN_YEAR_DIGITS, cn_digits, simplify
from govreports.extract.grid import table_grid
from govreports.extract.text_grid import text_table

_HTML_HINT = re.compile(r"<\s*(?:html|body|table|div|p|tr|td|head|meta|br)\b", re.I)
_BLOCK_TAGS = tuple(
    "p div br tr li ul ol h1 h2 h3 h4 h5 h6 table section article header footer title td th pre "
    "blockquote dd dt".split()
)
_SKIP_TAGS = ("script", "style", "noscript", "template")
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)  # lxml refuses one in a str
# Where a page says when it was published, most trusted first: a label of its metadata box or of a line above
# the report ("发布时间：2024年01月15日 10:20", "来源：… 时间：…"), an HTML <meta> (name or property, lower
# case, kept as "<meta NAME>"), then the date the document was written or generated. A bare date on a short
# line just below the title comes last (_date_below_title).
PUBLISHED_KEYS = ("发布日期", "发布时间", "公开日期", "公开时间", "发文日期", "日期", "时间", "<meta pubdate>",
                  "<meta publishdate>", "<meta publish_date>", "<meta firstpublishedtime>",
                  "<meta article:published_time>", "<meta dcterms.issued>", "<meta dc.date>", "成文日期", "生成日期")
META_KEYS = ("名称", "标题", "索引号", "发布机构", "发文机关", "文号", "发文字号", "主题分类", "分类", "来源",
             "信息来源", "单位", *(k for k in PUBLISHED_KEYS if not k.startswith("<")))
_META_KEYS = frozenset(META_KEYS)
_META_FIRST = frozenset(k[0] for k in META_KEYS)  # rules out most cells (numbers, labels) in one lookup
_META_KEY_ALT = "|".join(sorted(META_KEYS, key=len, reverse=True))
# A key after 采集, 生成, 更新, 修改, 访问, 浏览, 打印, 截止, 统计, 截至, 有效, 实施 names another time (采集时间: a
# crawler's). A value ends at a space, a colon, | or the next key: "来源：某局时间：2024-01-31" is two entries.
_META_TEXT = re.compile(rf"(?<![集成新改问览印止计至效施])({_META_KEY_ALT})\s*[:：]\s*"
                        rf"((?:(?!(?:{_META_KEY_ALT})\s*[:：])[^\s:：|])+)")
_META_TAGS = {k[6:-1] for k in PUBLISHED_KEYS if k.startswith("<meta ")}
_DATE = re.compile(r"((?:19|20)\d\d)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_BELOW_TITLE = 3  # lines under the title where a bare date is the publication date
_DATE_LINE_MAX = 40  # a longer line is prose (a statistics period), not a date line
_REPORT_WORDS = re.compile(r"政府信息公开.{0,12}(?:报告|年报|年度报)")
_TITLE_MAX = 64  # a longer line is prose that mentions the report, not its title
# Title: "<agency><year>年(度)政府信息公开…报告", "<year>年(度)<agency>政府信息公开…", or no year.
_TITLE_AGENCY_YEAR = re.compile(r"^(?P<agency>.*?)(?P<year>(?:19|20)\d\d)年度?(?P<agency2>.*?)政府信息公开")
_TITLE_NO_YEAR = re.compile(r"^(?P<agency>.+?)政府信息公开(?:工作)?(?:年度)?报告")
# Wrappers around the name: 关于印发《…》, 【2021年】…, quotes; brackets on either side of it.
_AGENCY_JUNK = re.compile(r"^(?:关于|印发|公布|发布|[《〈<\[【\"“》〉>\]】”])+|[》〉>\]】\"”《〈<\[【“]+$")
# Titles written by the agency about itself ("本单位2022年度政府信息公开…") name no one.
_NOT_A_NAME = frozenset(
    "本单位 本机关 本局 本委 本部门 本级 我局 我委 我单位 我镇 我乡 我街道 我办 我院 本镇 本乡 本街道".split()
)
_CLAUSE_BREAK = re.compile(r"[,，。;；:：!！?？、》]")
_PERIOD = re.compile(
    r"((?:19|20)\d\d)\s*年\s*1\s*月\s*1\s*日\s*(?:起)?\s*(?:至|到|-|—|－|~|～)\s*((?:19|20)\d\d)\s*年\s*12\s*月\s*31\s*日"
)
_CLAUSE_END = re.compile(r"[。；;]")
_SPACES = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\s*\n\s*")
_CLOSED = re.compile(r"</\s*(?:html|body)\s*>", re.I)
_ANY_YEAR = re.compile(r"((?:19|20)\d\d)\s*年")
_CN_YEAR = re.compile(rf"({CN_YEAR_DIGITS})(?=年)")


@dataclass
class Document:
    """One page as read: what transform needs to make rows of it, and nothing it has to read again."""

    kind: str  # "html" | "text" | "pdf" | "docx" | "doc" | "rtf"
    tables: list[Table]  # report-table candidates in document order (metadata boxes removed)
    text: str  # visible text, one block per line
    title: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    agency: str | None = None
    year: int | None = None
    agency_source: str | None = None  # title | metadata | None
    year_source: str | None = None  # title | period | text | published | None
    published: str | None = None  # ISO date the page says it was published (published_date), when it does
    complete: bool = False  # HTML that reaches its closing tag: a report in it cannot be cut off
    source: str = "<bytes>"  # URL or path the bytes came from
    content_sha256: str = ""  # of the raw bytes
    encoding: str | None = None  # the codec the bytes were decoded with
    budget: Budget = field(default_factory=Budget, repr=False, compare=False)  # what is left to spend on grids

    @cached_property
    def text_grid(self) -> Table:
        """The visible text read as a text rendering: the grid of report tables drawn as text inside
        HTML (<pre>, one <p> per cell). Built only when asked for: most pages never need it."""
        return text_table(self.text, self.budget)

    @property
    def publisher(self) -> str | None:
        return self.metadata.get("发布机构") or self.metadata.get("发文机关")


def _element_text(el: etree._Element) -> str:
    return " ".join(etree.tostring(el, method="text", encoding=str, with_tail=False).split())


def looks_like_html(text: str) -> bool:
    return bool(_HTML_HINT.search(text[:65536]))


def _visible_text(root: etree._Element) -> str:
    """The page's text, one block (paragraph, cell, list item, heading) per line. Changes the tree:
    call it last. Done with lxml's C text serialiser after marking block ends with newlines."""
    etree.strip_elements(root, *_SKIP_TAGS, with_tail=False)
    for el in root.iter(*_BLOCK_TAGS):
        el.tail = "\n" + el.tail if el.tail else "\n"
        if el.text:
            el.text = "\n" + el.text
    text = etree.tostring(root, method="text", encoding=str)
    # Each line stripped and blank lines dropped, in one C pass.
    return _LINE_BREAK.sub("\n", text).strip()


def _meta_key(text: str) -> str:
    return text.replace(" ", "").rstrip(":：")  # cell text has its whitespace folded to single spaces


def _metadata_from_table(table: Table) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in table.rows:
        cells = [c for c in row if not c.copy]
        for i, cell in enumerate(cells[:-1]):
            key = _meta_key(cell.text)
            if key in _META_KEYS and key not in out:
                value = " ".join(cells[i + 1].text.split())
                if value:
                    out[key] = value
    return out


def _is_metadata_box(table: Table) -> bool:
    found = 0
    for row in table.rows:
        for cell in row:
            text = cell.text
            if text[:1] in _META_FIRST and not cell.copy and len(text) < 12 and _meta_key(text) in _META_KEYS:
                found += 1
    return found >= 2


def metadata_from_text(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.split("\n", 80)[:80]:  # metadata sits above the report
        for key, value in _META_TEXT.findall(line):
            out.setdefault(key, value)
    return out


def _iso_date(value: str | None) -> str | None:
    """The first calendar date in `value` (2024-01-15, 2024/1/15, 2024.1.15, 2024年01月15日 10:20), ISO;
    None when there is none or it is no real day (2024-02-30)."""
    m = _DATE.search(value or "")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat() if m else None
    except ValueError:
        return None


def _date_below_title(text: str) -> str | None:
    lines = text.split("\n", 60)[:60]
    for i, line in enumerate(lines):
        if len(line) <= _TITLE_MAX and _REPORT_WORDS.search(_SPACES.sub("", simplify(line))):
            below = (_iso_date(n) for n in lines[i + 1:i + 1 + _BELOW_TITLE]
                     if len(n) <= _DATE_LINE_MAX and "至" not in n)
            return next(filter(None, below), None)
    return None


def published_date(metadata: dict[str, str], text: str) -> str | None:
    """The date the page says it was published (PUBLISHED_KEYS, then a date line under the title), ISO."""
    return next(filter(None, (_iso_date(metadata.get(k)) for k in PUBLISHED_KEYS)), None) or _date_below_title(text)


def _title_candidates(title: str | None, headings: list[str], metadata: dict[str, str], text: str) -> list[str]:
    out = [t for t in (metadata.get("名称"), metadata.get("标题"), title) if t]
    out += headings
    clauses = (c for line in text.split("\n", 60)[:60] for c in _CLAUSE_END.split(line))
    # 报告, 年报, 年度报 (報 in traditional): a clause with none of 报, 報, 告 cannot be a title.
    out += [c for c in clauses if len(c) <= _TITLE_MAX and ("报" in c or "報" in c or "告" in c)
            and _REPORT_WORDS.search(_SPACES.sub("", simplify(c)))]
    return out


def _agency_name(text: str) -> str | None:
    """The agency in a title: the words after any leading sentence ("现向社会公布…")."""
    name = _CLAUSE_BREAK.split(text)[-1]
    name = _AGENCY_JUNK.sub("", _AGENCY_JUNK.sub("", name))
    if name in _NOT_A_NAME or not 2 <= len(name) <= 40:
        return None
    return name


def _arabic_years(text: str) -> str:
    """二〇二一年 -> 2021年: a year in Chinese numerals is a year, not part of the agency's name."""
    def arabic(m: re.Match[str]) -> str:
        year = cn_digits(m.group(1))
        return year if year.startswith(("19", "20")) else m.group(1)  # 一一一一年 is no year

    return _CN_YEAR.sub(arabic, text)


def _agency_year_from_titles(candidates: list[str]) -> tuple[str | None, int | None]:
    agency: str | None = None
    for raw in candidates:
        line = _arabic_years(_SPACES.sub("", simplify(raw))[: 4 * _TITLE_MAX])
        if "政府信息公开" not in line:
            continue
        m = _TITLE_AGENCY_YEAR.search(line)
        if m:
            # "2021年石家庄市教育局政府信息公开…" names the agency after the year.
            name = _agency_name(m.group("agency2") or m.group("agency"))
            return (name or agency), int(m.group("year"))
        m = _TITLE_NO_YEAR.search(line)
        if m and agency is None:
            agency = _agency_name(m.group("agency"))
    return agency, None


def title_agency(text: str) -> str | None:
    """The agency a report's title names ("鄞州区交通运输局2021年政府信息公开工作年度报告" -> 鄞州区交通运输局),
    else None: a title, a heading or a listing's link text."""
    return _agency_year_from_titles([text])[0]


def identify(page: Document, headings: list[str]) -> None:
    """Fill the publication date, agency and year: from the title first, else 发布机构 and the statistics
    period, else the first year the opening section names, else the publication date minus one."""
    page.published = published_date(page.metadata, page.text)
    agency, year = _agency_year_from_titles(_title_candidates(page.title, headings, page.metadata, page.text))
    if agency:
        page.agency, page.agency_source = agency, "title"
    else:
        for key in ("发布机构", "发文机关", "单位"):
            if page.metadata.get(key):
                page.agency, page.agency_source = page.metadata[key], "metadata"
                break
    if year:
        page.year, page.year_source = year, "title"
        return
    text = simplify(page.text)
    m = _PERIOD.search(text)
    if m and m.group(1) == m.group(2):
        page.year, page.year_source = int(m.group(1)), "period"
        return
    # The opening prose (总体情况) states the year it reports on before it mentions any other.
    m = _ANY_YEAR.search(text, max(text.find("总体情况"), 0))
    if m:
        page.year, page.year_source = int(m.group(1)), "text"
    elif page.published:
        page.year, page.year_source = int(page.published[:4]) - 1, "published"


def _parse_html(text: str) -> etree._Element | None:
    if declaration := _XML_DECLARATION.match(text):
        text = text[declaration.end():]
    try:
        # A plain etree parser: lxml.html's element classes cost a Python lookup per element.
        return etree.fromstring(text, _PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def read_html(text: str) -> Document:
    try:
        return _read_html(text)
    except ValueError:
        # lxml parses control characters but refuses to set a text holding them (_visible_text
        # does): blanked only then, to spare every other page the scan.
        if not _NOT_XML.search(text):
            raise
        return _read_html(_NOT_XML.sub(" ", text))


def _read_html(text: str) -> Document:
    if text.count("<") - text.count("</") + text.count("=") > MAX_PAGE_TAGS:  # before lxml builds a tree
        raise ParseFailure("page too large", f"more than {MAX_PAGE_TAGS:,} tags and attributes")
    root = _parse_html(text)
    if root is None:
        return read_text(text)
    budget = Budget()
    etree.strip_elements(root, "template", with_tail=False)  # never rendered
    title_el = root.find(".//title")
    title = _element_text(title_el) if title_el is not None else None
    headings = [_element_text(h) for h in root.iter("h1", "h2", "h3")]
    tables: list[Table] = []
    metadata: dict[str, str] = {}
    for index, el in enumerate(root.iter("table")):
        grid = table_grid(el, index, budget)
        if _is_metadata_box(grid):
            metadata = _metadata_from_table(grid) | metadata  # the first box's value of a key stays
        elif grid.rows:
            tables.append(grid)
    for el in root.iter("meta"):
        name = (el.get("name") or el.get("property") or "").lower()
        if name in _META_TAGS and el.get("content"):
            metadata.setdefault(f"<meta {name}>", el.get("content"))
    visible = _visible_text(root)
    metadata = metadata_from_text(visible) | metadata
    page = Document(kind="html", tables=tables, text=visible, title=title, metadata=metadata,
                    complete=bool(_CLOSED.search(text[-4096:])), budget=budget)
    identify(page, headings)
    return page


def read_text(text: str) -> Document:
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    budget = Budget()
    page = Document(kind="text", tables=[text_table(text, budget)], text="\n".join(lines),
                    title=lines[0] if lines else None, metadata=metadata_from_text("\n".join(lines)), budget=budget)
    identify(page, [])
    return page


def read_page(text: str) -> Document:
    """Read decoded text as an HTML page when it looks like markup, else as a text rendering."""
    return read_html(text) if looks_like_html(text) else read_text(text)

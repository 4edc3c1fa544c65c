"""Synthetic agency websites: listing pages (paginated, TRS-style), report pages rendered by tests/render.py,
attachments, robots.txt, a registry of the agencies (sources.csv) and a manifest of what every report page holds.

Used by benchmarks/build_sample_site.py (the bundled demo site, data/sample_site/) and by benchmarks that need
a site of any size. Everything is deterministic: the same agencies and reports give the same bytes.

Specs whose sections 三 and 四 add up are built with `consistent_spec` (and `requests_cells` for 三 alone),
so that the identity checks pass on them.
"""

from __future__ import annotations

import csv
import html
import io
import json
import posixpath
import random
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from govreports.transform import dictionary as dd
from tests.render import ReportSpec, expected, render, template_cells

__all__ = [
    "SITE_STYLES",
    "SiteAgency",
    "SiteLink",
    "SiteReport",
    "build_site",
    "consistent_spec",
    "expected_values",
    "file_bytes",
    "page_bytes",
    "published_on_page",
    "requests_cells",
    "review_cells",
    "synthetic_site",
    "write_registry",
]

# The styles of tests/render.py that are HTML pages, plus our own: a text rendering inside an HTML <pre> (tables
# drawn as text: the parser falls back to the page's text), reports published only as a file linked from the
# listing (a PDF, a DOCX, a scanned PDF: tests/filerender.py), and a page without tables that links its .doc.
SITE_STYLES = ("html_plain", "html_word", "html_cms", "html_gbk", "html_pre_pipe", "pdf", "docx", "scan", "doc_page")
ATTACHMENT_STYLES = frozenset({"pdf", "docx", "scan"})
UNREADABLE_STYLES = frozenset({"scan"})  # no text layer: the manifest lists no values

APPLICANTS = tuple(code for code, _ in dd.applicants())  # natural_person … other_org, total
ORGS = APPLICANTS[:-1]  # the six applicant columns that add up to 总计


@dataclass(frozen=True)
class SiteReport:
    agency_id: str
    year: int
    spec: ReportSpec
    style: str  # one of SITE_STYLES
    path: str  # path on the site, e.g. "/330212-jtj/ndbg/202201/t20220120_1.html"
    chrome_kb: int = 0  # page chrome to pad HTML report pages with (tests/render.py)
    published: str = ""  # ISO date shown in the listing; default: 20 January of the next year
    note: str = ""  # recorded in the manifest (e.g. why a report fails its checks)

    @property
    def kind(self) -> str:
        if self.style == "doc_page":
            return "page_with_file"
        return "attachment" if self.style in ATTACHMENT_STYLES else "report"

    @property
    def file(self) -> str | None:
        """The path of the .doc a doc_page links (beside the page, same name)."""
        return self.path.rsplit(".", 1)[0] + ".doc" if self.style == "doc_page" else None

    @property
    def title(self) -> str:
        return f"{self.spec.agency}{self.year}年政府信息公开工作年度报告"

    @property
    def date(self) -> str:
        return self.published or f"{self.year + 1}-01-20"


@dataclass(frozen=True)
class SiteAgency:
    agency_id: str
    name: str
    province: str
    city: str
    county: str
    township: str
    level: str  # province | city | county | township
    kind: str  # government | department
    listing_path: str  # e.g. "/330212-jtj/ndbg/index.html"; further pages are index_1.html … beside it
    gbk: bool  # listing pages (and, by convention, report pages in html_gbk) in GBK with no charset anywhere
    page_size: int  # links per listing page


@dataclass(frozen=True)
class SiteLink:
    """A listing entry that is not a rendered report: a notice about reports, a link to another host, …"""

    agency_id: str
    title: str
    href: str  # a path on the site ("/…"), or an absolute URL to another host
    date: str  # ISO date shown in the listing
    kind: str = "other"  # recorded in the manifest: notice | external | other
    body: bytes | None = field(default=None, repr=False)  # written at href when href is a site path


# -- consistent report specs ------------------------------------------------------------------------------


def _outcomes(template: str) -> tuple[str, ...]:
    """The outcome metrics whose sum is （七）总计, in the template's shape (2019: one 其他处理 row)."""
    cells = {m for (m, a), e in template_cells(template) if e.section == "三" and a == "total"}
    return tuple(m for m in _outcome_order() if m in cells)


def _outcome_order() -> tuple[str, ...]:
    seen: list[str] = []
    for entry in dd.entries():
        if entry.section == "三" and entry.kind == "cell" and entry.metric.startswith("outcome_"):
            if entry.metric != "outcome_total" and entry.metric not in seen:
                seen.append(entry.metric)
    return tuple(seen)


def requests_cells(template: str, new: Mapping[str, int], carried_over: Mapping[str, int],
                   outcomes: Mapping[str, Mapping[str, int]]) -> tuple[dict[tuple[str, str], str], dict[str, int]]:
    """Every cell of section 三, adding up: per applicant column 一 + 二 = （七）总计 + 四 (the carried-forward
    row takes what was not handled), （七） = the sum of the outcomes, 总计 = the six applicant columns.

    `new` and `carried_over` map applicant codes (the six columns) to counts; `outcomes` maps outcome metrics
    (the template's: 2019 has one `outcome_other`, 2021 `outcome_other_no_correction` … `outcome_other_other`)
    to such maps. Missing entries are 0. Returns the cells and the carried-forward count per applicant code.
    Raises ValueError when a column handles more requests than it has."""
    metrics = _outcomes(template)
    unknown = set(outcomes) - set(metrics)
    if unknown:
        raise ValueError(f"not outcomes of the {template} template: {sorted(unknown)}")
    counts: dict[str, dict[str, int]] = {m: {a: 0 for a in ORGS} for m in ("requests_new", "requests_carried_over",
                                                                            *metrics, "outcome_total",
                                                                            "requests_carried_forward")}
    for a in ORGS:
        counts["requests_new"][a] = int(new.get(a, 0))
        counts["requests_carried_over"][a] = int(carried_over.get(a, 0))
        for m in metrics:
            counts[m][a] = int(outcomes.get(m, {}).get(a, 0))
        handled = sum(counts[m][a] for m in metrics)
        counts["outcome_total"][a] = handled
        left = counts["requests_new"][a] + counts["requests_carried_over"][a] - handled
        if left < 0:
            raise ValueError(f"{a}: {handled} handled of {left + handled} requests")
        counts["requests_carried_forward"][a] = left
    cells: dict[tuple[str, str], str] = {}
    for (metric, applicant), entry in template_cells(template):
        if entry.section != "三":
            continue
        row = counts.get(metric, {})
        value = sum(row.values()) if applicant == "total" else row.get(applicant, 0)
        cells[(metric, applicant)] = str(value)
    return cells, dict(counts["requests_carried_forward"])


def draw_requests(rng: random.Random, template: str, received: int, carried_over: Mapping[str, int] | None = None,
                  keep: int = 0) -> tuple[dict[tuple[str, str], str], dict[str, int]]:
    """A consistent section 三 with `received` new requests (mostly from natural persons, some from
    businesses), `carried_over` from last year, and about `keep` requests carried forward."""
    new = {a: 0 for a in ORGS}
    for _ in range(received):
        new[rng.choices(ORGS, weights=(80, 12, 1, 1, 4, 2))[0]] += 1
    over = {a: int((carried_over or {}).get(a, 0)) for a in ORGS}
    available = {a: new[a] + over[a] for a in ORGS}
    forward = {a: 0 for a in ORGS}
    for a in ORGS:  # keep the last requests of the year for next year, largest columns first
        take = min(keep - sum(forward.values()), available[a])
        if take > 0:
            forward[a] = take
    metrics = _outcomes(template)
    weights = {"outcome_disclosed": 50, "outcome_partial": 10, "outcome_withheld_process_info": 3,
               "outcome_withheld_third_party": 2, "outcome_unavailable_not_held": 18,
               "outcome_unavailable_unclear": 3, "outcome_not_processed_petition": 4,
               "outcome_not_processed_repeat": 4, "outcome_other": 3, "outcome_other_other": 3,
               "outcome_other_no_correction": 2}
    pool = [m for m in metrics if m in weights]
    outcomes: dict[str, dict[str, int]] = {m: {} for m in pool}
    for a in ORGS:
        for _ in range(available[a] - forward[a]):
            m = rng.choices(pool, weights=[weights[m] for m in pool])[0]
            outcomes[m][a] = outcomes[m].get(a, 0) + 1
    return requests_cells(template, new, over, outcomes)


def review_cells(rng: random.Random, template: str, reviews: int = 0, suits: int = 0) -> dict[tuple[str, str], str]:
    """Section 四 adding up (结果维持 + 结果纠正 + 其他结果 + 尚未审结 = 总计 per group): `reviews` 行政复议,
    `suits` 行政诉讼 split between 未经复议直接起诉 and 复议后起诉."""
    direct = rng.randint(0, suits)
    totals = {"review": reviews, "suit_direct": direct, "suit_after_review": suits - direct}
    cells: dict[tuple[str, str], str] = {}
    for group, total in totals.items():
        parts = {"upheld": 0, "corrected": 0, "other": 0, "pending": 0}
        for _ in range(total):
            parts[rng.choices(tuple(parts), weights=(70, 10, 10, 10))[0]] += 1
        for result, n in parts.items():
            cells[(f"{group}_{result}", "")] = str(n)
        cells[(f"{group}_total", "")] = str(total)
    known = {key for key, entry in template_cells(template) if entry.section == "四"}
    if set(cells) != known:
        raise AssertionError(f"section 四 of the {template} template: {sorted(known ^ set(cells))}")
    return cells


def _change(n: int, form: str) -> str:
    """A signed change as printed: form "cn" (增98 / 减6922), "sign" (+98 / -6922) or "plain" (98 / -6922)."""
    if form == "cn":
        return f"增{n}" if n > 0 else f"减{-n}" if n < 0 else "0"
    if form == "sign":
        return f"+{n}" if n > 0 else str(n)
    return str(n)


def _count(n: int, thousands: bool) -> str:
    return f"{n:,}" if thousands else str(n)


def consistent_spec(rng: random.Random, agency: str, year: int, template: str, *, licensing: int, penalty: int,
                    coercion: int = 0, prev: Mapping[str, int] | None = None, received: int = 0,
                    carried_over: Mapping[str, int] | None = None, keep: int = 0, reviews: int = 0, suits: int = 0,
                    change_form: str = "cn", thousands: bool = False) -> tuple[ReportSpec, dict[str, int]]:
    """A report whose decisions are the given ones and whose sections 三 and 四 add up.

    2019 template: `prev` gives last year's decisions ({"licensing": …, "penalty": …, "coercion": …}) for the
    上一年项目数量 column, and 本年增/减 is the difference (so the information-only pattern holds too).
    Returns the spec and the requests carried forward per applicant code (next year's `carried_over`)."""
    cells: dict[tuple[str, str], str] = {}
    decisions = {"licensing": licensing, "penalty": penalty, "coercion": coercion}
    if template == "2019":
        prev = dict(prev or {})
        docs = rng.randint(0, 3)
        cells.update({
            ("regulations_new_made", ""): "0", ("regulations_new_published", ""): "0",
            ("regulations_total_published", ""): "0",
            ("normative_docs_new_made", ""): str(docs), ("normative_docs_new_published", ""): str(docs),
            ("normative_docs_total_published", ""): str(docs + rng.randint(2, 30)),
        })
        other_prev = rng.randint(0, 40)
        other_now = max(other_prev + rng.randint(-8, 8), 0)
        prev.setdefault("other_services", other_prev)
        decisions["other_services"] = other_now
        for row, now in decisions.items():
            before = prev.get(row, now)
            cells[(f"{row}_items_prev_year", "")] = _count(before, thousands)
            cells[(f"{row}_items_change", "")] = _change(now - before, change_form)
            cells[(f"{row}_decisions", "")] = _count(now, thousands)
        fees = rng.randint(0, 6)
        cells[("fees_items_prev_year", "")] = str(fees)
        cells[("fees_items_change", "")] = _change(rng.choice((0, 0, -1, 1)) if fees else 0, change_form)
        projects = rng.randint(0, 12)
        cells[("procurement_projects", "")] = f"{projects}个" if rng.random() < 0.3 else str(projects)
        amount = rng.randint(10, 900) if projects else 0
        cells[("procurement_amount_wan_yuan", "")] = f"{amount}万" if amount and rng.random() < 0.5 else str(amount)
    else:
        docs = rng.randint(0, 4)
        cells.update({
            ("regulations_issued", ""): "0", ("regulations_repealed", ""): "0", ("regulations_in_force", ""): "0",
            ("normative_docs_issued", ""): str(docs), ("normative_docs_repealed", ""): str(rng.randint(0, docs)),
            ("normative_docs_in_force", ""): str(docs + rng.randint(3, 40)),
        })
        for row, now in decisions.items():
            cells[(f"{row}_decisions", "")] = _count(now, thousands)
        fee = rng.choice((0, 0, 0, round(rng.uniform(1, 300), 2)))
        cells[("fees_amount_wan_yuan", "")] = str(fee) if fee else "0"
    requests, forward = draw_requests(rng, template, received, carried_over, keep)
    cells.update(requests)
    cells.update(review_cells(rng, template, reviews, suits))
    missing = [key for key, _ in template_cells(template) if key not in cells]
    if missing:
        raise AssertionError(f"no text for {missing[:3]}")
    return ReportSpec(agency=agency, year=year, template=template, cells=cells), forward


# -- pages ----------------------------------------------------------------------------------------------------

_PUBLISHED = re.compile("发布日期：</td><td>(\\d{4}-\\d\\d-\\d\\d)<".encode())
_PUBLISHED_GBK = re.compile("发布日期：</td><td>(\\d{4}-\\d\\d-\\d\\d)<".encode("gbk"))


def published_on_page(data: bytes) -> str | None:
    """The publication date a CMS page shows in its metadata box (UTF-8 or GBK bytes), if any."""
    m = _PUBLISHED.search(data) or _PUBLISHED_GBK.search(data)
    return m.group(1).decode("ascii") if m else None



def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _pre_page(spec: ReportSpec, text_style: str) -> bytes:
    """A report whose tables are drawn as text, inside an HTML page's <pre>."""
    text = render(spec, text_style).decode("utf-8")
    title = f"{spec.agency}{spec.year}年政府信息公开工作年度报告"
    page = (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{_esc(title)}</title>\n</head>\n'
            f'<body>\n<div class="article">\n<pre>\n{_esc(text)}</pre>\n</div>\n</body>\n</html>\n')
    return page.encode("utf-8")


_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
_CORE_DATE = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)")


def _stable_docx(data: bytes) -> bytes:
    """python-docx's bytes with fixed zip entry times and core-property dates, so each build writes the same."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "docProps/core.xml":
                body = _CORE_DATE.sub(rb"\g<1>2020-01-01T00:00:00Z\g<2>", body)
            dst.writestr(zipfile.ZipInfo(info.filename, _FIXED_TIME), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _render_file(style: str, spec: ReportSpec) -> bytes:
    from reportlab import rl_config

    from tests import filerender

    rl_config.invariant = 1  # no creation date or random document id in the PDF: the same bytes each build
    renderers = {"pdf": lambda: filerender.render_pdf(spec), "scan": lambda: filerender.render_image_pdf(1),
                 "docx": lambda: _stable_docx(filerender.render_docx(spec)),
                 "doc": lambda: filerender.render_doc(spec)}
    return renderers[style]()


def _doc_page(report: SiteReport) -> bytes:
    """A report page that prints no table and links the report as a .doc, as many sites publish them."""
    name = posixpath.basename(report.file or "")
    page = (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{_esc(report.title)}</title>\n'
            f'</head>\n<body>\n<div class="article">\n<h1>{_esc(report.title)}</h1>\n'
            f"<p>根据《中华人民共和国政府信息公开条例》，现公布{_esc(report.spec.agency)}{report.year}年政府信息公开"
            "工作年度报告，详见附件。（示例数据，不是真实报告。）</p>\n"
            f'<p>附件：<a href="./{_esc(name)}">{_esc(report.title)}.doc</a></p>\n</div>\n</body>\n</html>\n')
    return page.encode("utf-8")


def file_bytes(report: SiteReport, kept: Mapping[str, bytes] | None = None) -> bytes | None:
    """The bytes served at report.file (a doc_page's .doc), or None. LibreOffice's .doc output is not
    byte-stable, so the bytes a previous build wrote (`kept`, by path) are reused."""
    if report.file is None:
        return None
    return (kept or {}).get(report.file) or _render_file("doc", report.spec)


def page_bytes(report: SiteReport) -> bytes:
    """The bytes served at report.path."""
    if report.style in ATTACHMENT_STYLES:
        return _render_file(report.style, report.spec)
    if report.style == "doc_page":
        return _doc_page(report)
    if report.style == "html_pre_pipe":
        return _pre_page(report.spec, "text_pipe")
    if report.style not in SITE_STYLES:
        raise ValueError(f"unknown site style {report.style!r}; expected one of {SITE_STYLES}")
    data = render(report.spec, report.style, chrome_kb=report.chrome_kb)
    if report.published:  # the metadata box shows the date the listing shows
        shown = f"发布日期：</td><td>{report.published}<"
        data = _PUBLISHED.sub(shown.encode(), data, count=1)
        data = _PUBLISHED_GBK.sub(shown.encode("gbk"), data, count=1)
    return data


def expected_values(report: SiteReport) -> dict[str, list]:
    """{"metric|applicant label": [value_status, value]} for a report (its page or its file); {} for a scan."""
    if report.style in UNREADABLE_STYLES:
        return {}
    return {f"{metric}|{applicant}": [status, int(value) if value is not None and value == int(value) else value]
            for (metric, applicant), (status, value) in expected(report.spec).items()}


# -- listing pages ------------------------------------------------------------------------------------------

_PAGE_JS = """// TRS-style pagination: writes the page links of a listing column.
function createPageHTML(_nPageCount, _nCurrIndex, _sPageName, _sPageExt) {
  if (_nPageCount == null || _nPageCount <= 1) { return; }
  var name = function (i) { return i == 0 ? _sPageName + "." + _sPageExt : _sPageName + "_" + i + "." + _sPageExt; };
  var out = [];
  if (_nCurrIndex > 0) { out.push('<a href="' + name(_nCurrIndex - 1) + '">上一页</a>'); }
  for (var i = 0; i < _nPageCount; i++) {
    out.push(i == _nCurrIndex ? '<span class="cur">' + (i + 1) + '</span>'
                              : '<a href="' + name(i) + '">' + (i + 1) + '</a>');
  }
  if (_nCurrIndex < _nPageCount - 1) { out.push('<a href="' + name(_nCurrIndex + 1) + '">下一页</a>'); }
  document.write(out.join(" "));
}
"""

_CSS = """body { margin: 0; font: 14px/1.6 "Microsoft YaHei", SimSun, sans-serif; color: #333; }
.top { background: #1d5fa8; color: #fff; padding: 12px 24px; }
.top .logo { font-size: 24px; font-weight: bold; }
.top .nav li, .side li { list-style: none; display: inline-block; margin-right: 18px; }
.top .nav a { color: #fff; }
.crumb { padding: 8px 24px; background: #f2f2f2; }
.main { display: flex; padding: 0 24px; }
.side { width: 220px; }
.side li { display: block; }
.list { flex: 1; }
.list li { list-style: none; border-bottom: 1px dashed #ccc; padding: 6px 0; }
.list li span { float: right; color: #999; }
.page { margin: 16px 0; text-align: center; }
.page a, .page span { margin: 0 4px; }
.footer { margin-top: 24px; padding: 16px 24px; background: #eee; text-align: center; font-size: 12px; }
"""

_SIDE = ("政府信息公开指南", "政府信息公开制度", "机构职能", "法定主动公开内容", "政府信息公开年报", "依申请公开")


def _listing_dir(agency: SiteAgency) -> str:
    return posixpath.dirname(agency.listing_path) + "/"


def _listing_name(agency: SiteAgency, page: int) -> str:
    stem, ext = posixpath.splitext(posixpath.basename(agency.listing_path) or "index.html")
    return f"{stem}.{ext.lstrip('.')}" if page == 0 else f"{stem}_{page}.{ext.lstrip('.')}"


def listing_paths(agency: SiteAgency, n_links: int) -> list[str]:
    """The listing pages of an agency with `n_links` entries: index.html, index_1.html, …"""
    pages = max(1, -(-n_links // max(agency.page_size, 1)))
    return [_listing_dir(agency) + _listing_name(agency, k) for k in range(pages)]


def _href(target: str, listing_dir: str) -> str:
    """Relative ("./202201/t….html", as TRS sites print them) for pages under the column; else as given."""
    if target.startswith(listing_dir):
        return "./" + target[len(listing_dir):]
    return target


def _shown(title: str, cut: int | None) -> str:
    return title if cut is None or len(title) <= cut else title[:cut] + "…"


def _listing_page(agency: SiteAgency, entries: Sequence[tuple[str, str, str]], page: int, pages: int,
                  cut: int | None) -> str:
    home = posixpath.dirname(_listing_dir(agency).rstrip("/")).rstrip("/") + "/index.html"
    column = _listing_dir(agency) + _listing_name(agency, 0)
    stem, ext = posixpath.splitext(_listing_name(agency, 0))
    items = "".join(
        f'<li><a href="{_esc(_href(href, _listing_dir(agency)))}" target="_blank" title="{_esc(title)}">'
        f"{_esc(_shown(title, cut))}</a><span>{date}</span></li>\n"
        for title, href, date in entries
    )
    links = []
    if page > 0:
        links.append(f'<a href="{_listing_name(agency, 0)}">首页</a>')
        links.append(f'<a href="{_listing_name(agency, page - 1)}">上一页</a>')
    if page < pages - 1:
        links.append(f'<a href="{_listing_name(agency, page + 1)}">下一页</a>')
        links.append(f'<a href="{_listing_name(agency, pages - 1)}">尾页</a>')
    static = f'<div class="page-static">{" ".join(links)} 共{pages}页 当前第{page + 1}页</div>\n' if pages > 1 else ""
    meta = "" if agency.gbk else '<meta charset="utf-8">\n'
    side = "".join(
        f'<li><a href="{_esc(column if label == "政府信息公开年报" else home)}">{label}</a></li>\n' for label in _SIDE
    )
    return (
        f"<!DOCTYPE html>\n<html>\n<head>\n{meta}<title>政府信息公开年报_{_esc(agency.name)}</title>\n"
        '<link rel="stylesheet" href="/common/css/site.css">\n'
        '<script type="text/javascript" src="/common/js/page.js"></script>\n</head>\n<body>\n'
        f'<div class="top"><div class="logo">{_esc(agency.name)}</div>\n<ul class="nav">\n'
        f'<li><a href="{home}">首页</a></li>\n<li><a href="{home}">机构概况</a></li>\n'
        f'<li><a href="{column}">政府信息公开</a></li>\n<li><a href="{home}">互动交流</a></li>\n</ul>\n</div>\n'
        f'<div class="crumb">当前位置：<a href="{home}">首页</a> &gt; <a href="{home}">政府信息公开</a> &gt; '
        f'<a href="{column}">政府信息公开年报</a></div>\n'
        f'<div class="main">\n<div class="side"><ul>\n{side}</ul></div>\n'
        f'<div class="list">\n<h2>政府信息公开年报</h2>\n<ul class="xxgk-list">\n{items}</ul>\n'
        f'<div class="page"><script type="text/javascript">createPageHTML({pages}, {page}, "{stem}", '
        f'"{ext.lstrip(".")}");</script></div>\n{static}</div>\n</div>\n'
        f'<div class="footer">主办单位：{_esc(agency.name)} 地址：{_esc(agency.province + agency.city + agency.county)}'
        "<br>本网站为示例站点，数据为示例数据 版权所有</div>\n</body>\n</html>\n"
    )


def _home_page(agency: SiteAgency) -> str:
    column = _listing_dir(agency) + _listing_name(agency, 0)
    meta = "" if agency.gbk else '<meta charset="utf-8">\n'
    return (f"<!DOCTYPE html>\n<html>\n<head>\n{meta}<title>{_esc(agency.name)}</title>\n"
            '<link rel="stylesheet" href="/common/css/site.css">\n</head>\n<body>\n'
            f'<div class="top"><div class="logo">{_esc(agency.name)}</div></div>\n'
            f'<div class="main"><div class="list"><h2>政府信息公开</h2><ul>\n'
            f'<li><a href="{column}">政府信息公开年报</a></li>\n</ul></div></div>\n'
            '<div class="footer">示例站点，数据为示例数据</div>\n</body>\n</html>\n')


def _portal(agencies: Sequence[SiteAgency]) -> str:
    items = "".join(
        f'<li><a href="{_esc(a.listing_path)}">{_esc(a.name)}</a> '
        f'<small>{_esc("/".join(p for p in (a.province, a.city, a.county, a.township) if p))}'
        f"{'（GBK）' if a.gbk else ''}</small></li>\n"
        for a in agencies
    )
    return ('<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>示例政府网站（govreports）</title>\n'
            '<link rel="stylesheet" href="/common/css/site.css">\n</head>\n<body>\n'
            '<div class="top"><div class="logo">示例政府网站</div></div>\n<div class="main"><div class="list">\n'
            "<p>这是 govreports 自带的示例站点：机构名称真实，数字为示例数据（鄞州区交通运输局2020年报告除外）。"
            "This is sample data.</p>\n"
            f'<h2>政府信息公开年报栏目</h2>\n<ul>\n{items}</ul>\n</div></div>\n</body>\n</html>\n')


def _encode(text: str, gbk: bool) -> bytes:
    return text.encode("gbk") if gbk else text.encode("utf-8")


ROBOTS = """# The demo site: everything may be fetched except the search pages.
User-agent: *
Disallow: /search/
"""


def build_site(out_dir: Path, agencies: Sequence[SiteAgency], reports: Sequence[SiteReport], *,
               extras: Sequence[SiteLink] = (), truncate_titles: Mapping[str, int] | None = None,
               manifest_extra: Mapping[str, object] | None = None, kept: Mapping[str, bytes] | None = None) -> dict:
    """Write the site under `out_dir`: per agency a home page, its listing pages (newest first, `page_size`
    links per page, 下一页/尾页 links and a createPageHTML call) and its report pages; a portal index.html,
    robots.txt, /common/ assets, the extras' bodies, and manifest.json (returned too).

    `truncate_titles` maps agency ids to a length at which their listing link texts are cut with "…" (the
    full title stays in the link's title attribute, as CMSs print them). `kept`: file_bytes's."""
    out_dir = Path(out_dir)
    by_id = {a.agency_id: a for a in agencies}
    if len(by_id) != len(agencies):
        raise ValueError("duplicate agency ids")
    paths: set[str] = set()
    for r in reports:
        if r.agency_id not in by_id:
            raise ValueError(f"report {r.path}: unknown agency {r.agency_id!r}")
        if not r.path.startswith("/") or r.path in paths:
            raise ValueError(f"report path {r.path!r} is not an absolute site path, or is used twice")
        paths.add(r.path)

    def write(path: str, data: bytes) -> None:
        target = out_dir / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    write("/robots.txt", ROBOTS.encode("ascii"))
    write("/common/js/page.js", _PAGE_JS.encode("utf-8"))
    write("/common/css/site.css", _CSS.encode("utf-8"))
    write("/index.html", _portal(agencies).encode("utf-8"))

    manifest_reports = []
    for r in reports:
        data = page_bytes(r)
        if by_id[r.agency_id].gbk and r.style not in ("html_gbk", *ATTACHMENT_STYLES):
            raise ValueError(f"{r.path}: the GBK site {r.agency_id} serves html_gbk report pages only")
        write(r.path, data)
        file = file_bytes(r, kept)
        if file is not None and r.file:
            write(r.file, file)
        values = expected_values(r)
        manifest_reports.append({
            "agency_id": r.agency_id, "agency": r.spec.agency, "year": r.year, "path": r.path, "kind": r.kind,
            "template": r.spec.template if values else None, "style": r.style,
            "encoding": "gbk" if r.style == "html_gbk" else ("binary" if r.kind == "attachment" else "utf-8"),
            "title": r.title, "published": r.date, "bytes": len(data), "note": r.note,
            **({"file": r.file, "file_bytes": len(file)} if file is not None else {}),
            "values": values,
        })

    manifest_links = []
    for link in extras:
        if link.agency_id not in by_id:
            raise ValueError(f"extra link {link.href}: unknown agency {link.agency_id!r}")
        if link.body is not None and link.href.startswith("/"):
            write(link.href, link.body)
        manifest_links.append({"agency_id": link.agency_id, "title": link.title, "href": link.href,
                               "date": link.date, "kind": link.kind})

    manifest_agencies = []
    for agency in agencies:
        entries = [(r.title, r.path, r.date) for r in reports if r.agency_id == agency.agency_id]
        entries += [(x.title, x.href, x.date) for x in extras if x.agency_id == agency.agency_id]
        entries.sort(key=lambda e: (e[2], e[0]), reverse=True)  # newest first
        pages = listing_paths(agency, len(entries))
        cut = (truncate_titles or {}).get(agency.agency_id)
        for k, path in enumerate(pages):
            chunk = entries[k * agency.page_size:(k + 1) * agency.page_size]
            write(path, _encode(_listing_page(agency, chunk, k, len(pages), cut), agency.gbk))
        home = posixpath.dirname(_listing_dir(agency).rstrip("/")).rstrip("/") + "/index.html"
        if home not in pages:
            write(home, _encode(_home_page(agency), agency.gbk))
        manifest_agencies.append({
            "agency_id": agency.agency_id, "name": agency.name,
            "region": "/".join(p for p in (agency.province, agency.city, agency.county, agency.township) if p),
            "level": agency.level, "kind": agency.kind, "gbk": agency.gbk, "page_size": agency.page_size,
            "listing_pages": pages, "home": home,
        })

    manifest = {
        "about": "A synthetic imitation of agency websites (benchmarks/sites.py). Paths are site paths; "
                 "values map 'metric|applicant label' to [value_status, value] as a correct parse gives them.",
        **(manifest_extra or {}),
        "agencies": manifest_agencies,
        "reports": manifest_reports,
        "links": manifest_links,
    }
    (out_dir / "manifest.json").write_text(dump_manifest(manifest), encoding="utf-8")
    return manifest


def dump_manifest(manifest: Mapping[str, object]) -> str:
    """JSON with one line per list item (an agency, a report with all its values, a link): small and diffable."""
    out = ["{"]
    items = list(manifest.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list):
            out.append(f" {json.dumps(key)}: [")
            out.extend(f"  {json.dumps(item, ensure_ascii=False)}{',' if j < len(value) - 1 else ''}"
                       for j, item in enumerate(value))
            out.append(f" ]{comma}")
        else:
            out.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


def write_registry(path: Path, agencies: Iterable[SiteAgency], base_url_placeholder: str = "{site}",
                   hosts: str = "127.0.0.1", comment: str = "", base_urls: Mapping[str, str] | None = None) -> None:
    """A sources.csv (extract/sources.py's format) whose listing URLs are "<placeholder><listing_path>" and
    whose hosts are `hosts`. Substitute the placeholder with the site's base URL before loading.

    `base_urls` maps agency ids to a base URL ("http://127.0.0.5:8000") written instead of the placeholder,
    with that URL's host as the agency's hosts: a site spread over several hosts."""
    out = io.StringIO()
    for line in comment.splitlines():
        out.write(f"# {line}\n".replace("# \n", "#\n"))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["agency_id", "name", "province", "city", "county", "township", "level", "kind",
                     "listing_urls", "report_urls", "hosts"])
    for a in agencies:
        base = (base_urls or {}).get(a.agency_id)
        writer.writerow([a.agency_id, a.name, a.province, a.city, a.county, a.township, a.level, a.kind,
                         (base or base_url_placeholder) + a.listing_path, "",
                         urlsplit(base).hostname if base else hosts])
    Path(path).write_text(out.getvalue(), encoding="utf-8")


# -- a site of any size (benchmarks) -----------------------------------------------------------------------

_DEPARTMENTS = (("jtj", "交通运输局"), ("fgj", "发展和改革局"), ("mzj", "民政局"), ("jyj", "教育局"),
                ("wjj", "卫生健康局"), ("scjgj", "市场监督管理局"), ("czj", "财政局"), ("sfj", "司法局"))


def synthetic_site(n_agencies: int, years: Sequence[int] = (2019, 2020, 2021, 2022, 2023, 2024), seed: int = 0,
                   gbk_share: float = 0.2, page_size: int = 10) -> tuple[list[SiteAgency], list[SiteReport]]:
    """`n_agencies` made-up department sites (ids like "900001-jtj") with one consistent report per year in
    a random HTML style, for benchmarks. Build them with build_site."""
    rng = random.Random(seed)
    agencies: list[SiteAgency] = []
    reports: list[SiteReport] = []
    for i in range(n_agencies):
        code, kind = _DEPARTMENTS[i % len(_DEPARTMENTS)]
        county = f"示例{i // len(_DEPARTMENTS) + 1}区"
        agency_id = f"{900001 + i // len(_DEPARTMENTS)}-{code}"
        gbk = rng.random() < gbk_share
        agency = SiteAgency(agency_id, county + kind, "示例省", "示例市", county, "", "county", "department",
                            f"/{agency_id}/ndbg/index.html", gbk, page_size)
        agencies.append(agency)
        licensing, penalty = rng.randint(100, 30000), rng.randint(10, 5000)
        prev: dict[str, int] = {}
        over: dict[str, int] = {}
        for year in years:
            template = "2019" if year <= 2020 else "2021"
            spec, over = consistent_spec(rng, agency.name, year, template, licensing=licensing, penalty=penalty,
                                         coercion=rng.randint(0, 20), prev=prev, received=rng.randint(0, 30),
                                         carried_over=over, keep=rng.randint(0, 2), reviews=rng.randint(0, 2),
                                         suits=rng.randint(0, 2))
            prev = {"licensing": licensing, "penalty": penalty}
            style = "html_gbk" if gbk else rng.choice(("html_plain", "html_cms", "html_cms", "html_word"))
            date = f"{year + 1}-01-{rng.randint(10, 28):02d}"
            path = f"/{agency_id}/ndbg/{year + 1}01/t{date.replace('-', '')}_{rng.randint(10**5, 10**6 - 1)}.html"
            reports.append(SiteReport(agency_id, year, spec, style, path, chrome_kb=rng.choice((0, 2, 8)),
                                      published=date))
            licensing = max(0, int(licensing * rng.uniform(0.8, 1.2)))
            penalty = max(0, int(penalty * rng.uniform(0.8, 1.2)))
    return agencies, reports

"""Render a report (every cell of one template, with the texts printed in them) as a page in each of
the markup styles real reports come in, and say what a correct parse of that page must give.

The layout follows the official templates (data/dictionary.csv, /work/shared/reference/format.md):
title, 一 prose, 二 blocks (caption row, 信息内容 header, one row per item), 三 (corner note,
applicant header over three rows, rows with their printed numbering and merged group cells), 四
(header over three rows, one row of 15 values), 五 and 六 prose. The prose is our own filler.

Each rendering also varies in ways real pages vary (wrapped header words, half- or full-width
brackets, padded values, Word runs split mid-label): the variation is drawn from a generator seeded
by the spec and the style, so a spec always renders to the same bytes.

Used by tests/test_property.py (hypothesis: `report_specs`) and benchmarks/ (`random_spec`).
"""

from __future__ import annotations

import hashlib
import html
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from govreports.transform import dictionary as dd
from govreports.transform.values import parse_value

__all__ = [
    "STYLES",
    "WRAPPED_CELL_STYLE",
    "ReportSpec",
    "balanced_spec",
    "expected",
    "random_spec",
    "render",
    "report_specs",
    "template_cells",
]

STYLES = (
    "html_plain",
    "html_word",
    "html_cms",
    "html_gbk",
    "text_tab",
    "text_pipe",
    "text_markdown",
    "text_cell_per_line",
    "text_pipe_per_line",
    "text_bar_per_line",
)
# Rendered like the styles above but not in STYLES: it cannot print an empty cell, and the property
# tests draw blanks for every style but text_cell_per_line (tests/test_text_grid.py covers it).
WRAPPED_CELL_STYLE = "text_cell_per_line_wrapped"
HTML_STYLES = frozenset(s for s in STYLES if s.startswith("html_"))


@dataclass(frozen=True)
class ReportSpec:
    agency: str
    year: int
    template: str  # "2019" | "2021"
    # (metric, applicant code or "") -> the printed cell text, for every cell of the template
    # (dictionary rows of kind "cell" only: no subtotal rows)
    cells: dict[tuple[str, str], str] = field(hash=False)


# -- the template, from the dictionary ------------------------------------------------------------


@cache
def template_cells(template: str) -> tuple[tuple[tuple[str, str], dd.Entry], ...]:
    """Every cell of a template in dictionary order: ((metric, applicant code or ""), entry)."""
    if template not in dd.TEMPLATES:
        raise ValueError(f"unknown template {template!r}")
    return tuple(
        ((e.metric, e.col_key if e.section == "三" else ""), e)
        for e in dd.entries()
        if e.kind == "cell" and template in e.templates
    )


def _unique(items) -> list:
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


@cache
def _blocks(template: str) -> tuple[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...]:
    """二: (block, ((row_key, row_label), ...), ((col_key, column_label), ...)) in printed order."""
    entries = [e for _, e in template_cells(template) if e.section == "二"]
    out = []
    for block in _unique(e.block for e in entries):
        mine = [e for e in entries if e.block == block]
        rows = tuple(_unique((e.row_key, e.row_label) for e in mine))
        cols = tuple(_unique((e.col_key, e.column_label) for e in mine))
        out.append((block, rows, cols))
    return tuple(out)


@cache
def _metric_of(template: str) -> dict[tuple[str, str, str], str]:
    """(section, row_key, col_key) -> metric, for 二 and 四."""
    return {(e.section, e.row_key, e.col_key): e.metric for _, e in template_cells(template) if e.section != "三"}


@cache
def _rows3(template: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """三: (metric, label path) per printed row, in order."""
    return tuple(
        _unique((e.metric, tuple(e.row_label.split("/"))) for _, e in template_cells(template) if e.section == "三")
    )


@cache
def _groups4(template: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """四: ((group key, label), ...), ((result key, label), ...)."""
    entries = [e for _, e in template_cells(template) if e.section == "四"]
    return (tuple(_unique((e.row_key, e.row_label) for e in entries)),
            tuple(_unique((e.col_key, e.column_label) for e in entries)))


# -- what a correct parse gives -------------------------------------------------------------------


def expected(spec: ReportSpec) -> dict[tuple[str, str], tuple[str, float | None]]:
    """(metric, applicant label or "") -> (value_status, value), as the parser must read each cell."""
    labels = dict(dd.applicants())
    out: dict[tuple[str, str], tuple[str, float | None]] = {}
    for key, entry in template_cells(spec.template):
        parsed = parse_value(spec.cells[key], entry.unit)
        applicant = labels[key[1]] if key[1] else ""
        out[(key[0], applicant)] = (parsed.status, parsed.value)
    return out


# -- generating specs -----------------------------------------------------------------------------


class _Draw(Protocol):
    def choice(self, seq: Sequence[Any]) -> Any: ...
    def integer(self, lo: int, hi: int) -> int: ...


class _RandomDraw:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.rng.choice(seq)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class _HypothesisDraw:
    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def choice(self, seq: Sequence[Any]) -> Any:
        return self.draw(self.st.sampled_from(seq))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))


# Real names of places and kinds of agencies (facts, not prose); combined freely.
_PLACES = (
    "宁波市鄞州区", "沭阳县", "天津市和平区", "抚州市", "石家庄市", "京山市", "昌图县", "重庆市九龙坡区",
    "杭州市西湖区", "南京市玄武区", "成都市武侯区", "长沙县", "曲阜市", "乐清市", "宿迁市宿城区",
    "苏州市吴江区", "合肥市蜀山区", "福州市鼓楼区", "郑州市金水区", "昆明市五华区",
)
_AGENCY_KINDS = (
    "人民政府", "交通运输局", "发展和改革局", "民政局", "教育局", "卫生健康局", "市场监督管理局",
    "财政局", "自然资源和规划局", "住房和城乡建设局", "生态环境局", "人力资源和社会保障局", "司法局",
    "农业农村局", "水利局", "应急管理局", "统计局", "医疗保障局", "文化和旅游局", "城市管理局",
)
_TOWNS = ("七家子镇", "城关镇", "新桥街道", "东湖街道", "南塘镇", "石门乡")
_TOWN_KINDS = ("人民政府", "办事处")

# Cell kinds, repeated to weight them; the first of each is the simplest (hypothesis shrinks to it).
_COUNT_KINDS = ("zero", "zero", "zero", "small", "small", "small", "big", "thousands", "word", "fullwidth",
                "padded")
_CHANGE_KINDS = ("zero", "small", "signed", "signed", "cn_signed", "cn_signed", "thousands")
_MONEY_KINDS = ("zero", "decimal", "decimal", "wan_yuan", "yuan", "wan", "small")
_NOT_GIVEN = ("/", "—", "无", "-")
_COUNT_WORDS = ("个", "件", "项", "条")
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_PADS = (" {}", "{} ", "\u3000\u3000 {}", "\u00a0{}", "{}\u00a0", " {} ")


def _agency(d: _Draw) -> str:
    place = d.choice(_PLACES)
    if d.integer(0, 4) == 0:
        return place + d.choice(_TOWNS) + d.choice(_TOWN_KINDS)
    return place + d.choice(_AGENCY_KINDS)


def _cell_text(d: _Draw, entry: dd.Entry) -> str:
    if entry.unit == "wan_yuan":
        kind = d.choice(_MONEY_KINDS)
        if kind == "zero":
            return "0"
        if kind == "small":
            return str(d.integer(1, 999))
        if kind == "yuan":
            return f"{d.integer(1, 9_999_999)}元"
        if kind == "wan":
            return f"{d.integer(1, 9_999)}万"
        digits = d.integer(1, 6)
        number = f"{d.integer(0, 9_999)}.{d.integer(0, 10**digits - 1):0{digits}d}"
        return number + ("万元" if kind == "wan_yuan" else "")
    kinds = _CHANGE_KINDS if entry.col_key == "items_change" else _COUNT_KINDS
    kind = d.choice(kinds)
    if kind == "zero":
        return "0"
    if kind == "small":
        return str(d.integer(1, 99))
    if kind == "big":
        return str(d.integer(100, 1_000_000))
    if kind == "thousands":
        return f"{d.integer(1_000, 1_000_000):,}"
    if kind == "word":
        return f"{d.integer(0, 999)}{d.choice(_COUNT_WORDS)}"
    if kind == "fullwidth":
        return str(d.integer(0, 9_999)).translate(_FULLWIDTH)
    if kind == "padded":
        return d.choice(_PADS).format(d.integer(0, 999))
    if kind == "signed":
        return f"{d.choice('+-')}{d.integer(1, 99_999)}"
    return f"{d.choice(('增', '减', '增加', '减少'))}{d.integer(1, 99_999)}"  # cn_signed


def _spec(d: _Draw, template: str | None, year: int | None, agency: str | None, blanks: bool,
          empty: bool) -> ReportSpec:
    template = template or d.choice(dd.TEMPLATES)
    if year is None:
        # Mostly the template's own years; sometimes a report in the other template's years.
        years = (2019, 2020) if template == "2019" else (2021, 2022, 2023, 2024)
        year = d.choice(years) if d.integer(0, 5) else d.integer(2019, 2024)
    agency = agency or _agency(d)
    cells = {key: _cell_text(d, entry) for key, entry in template_cells(template)}
    if blanks:
        _leave_blank(d, template, cells, empty)
    return ReportSpec(agency=agency, year=year, template=template, cells=cells)


# How a report leaves cells unfilled. Blanks at the edges of a row (its first cell, all of it)
# are where readers that count cells go wrong, so each pattern gets a fair share of the draws.
_BLANK_PATTERNS = ("sprinkled", "organisations", "empty_rows", "leading", "none")


def _row_of(key: tuple[str, str], entry: dd.Entry) -> str:
    """The printed row a cell sits on: 二 item, 三 metric, the one 四 row."""
    return {"二": f"二/{entry.block}/{entry.row_key}", "三": key[0]}.get(entry.section, "四")


def _leave_blank(d: _Draw, template: str, cells: dict[tuple[str, str], str], empty: bool) -> None:
    markers = ("", *_NOT_GIVEN) if empty else _NOT_GIVEN
    pattern = d.choice(_BLANK_PATTERNS)
    entries = template_cells(template)
    if pattern == "sprinkled":
        # A cell here and there: blank, "/", "—", "无" or "-".
        for key, _ in entries:
            if d.integer(0, 9) == 9:
                cells[key] = d.choice(markers)
    elif pattern == "organisations":
        # Only 自然人 and 总计 filled in 三; the organisations left blank or all marked "/".
        marker = d.choice(markers[:3])
        organisations = {code for code, _ in dd.applicants()[1:-1]}
        cells.update({key: marker for key in cells if key[1] in organisations})
    else:
        rows: dict[str, list[tuple[str, str]]] = {}
        for key, entry in entries:
            rows.setdefault(_row_of(key, entry), []).append(key)
        for keys in rows.values():
            if pattern == "empty_rows" and d.integer(0, 3) == 3:
                # A row with nothing to report (no reconsideration, no fees): all blank or all "/".
                marker = d.choice(markers[:2])
                cells.update(dict.fromkeys(keys, marker))
            elif pattern == "leading" and d.integer(0, 2) == 2:
                cells[keys[0]] = d.choice(markers)


def random_spec(rng: random.Random, template: str | None = None, year: int | None = None,
                agency: str | None = None, *, allow_blanks: bool = True, empty_cells: bool = True) -> ReportSpec:
    """A spec drawn with `rng` (for benchmarks: no hypothesis)."""
    return _spec(_RandomDraw(rng), template, year, agency, allow_blanks, empty_cells)


_REQUESTS3 = ("requests_new", "requests_carried_over", "outcome_total", "requests_carried_forward")


def balanced_spec(rng: random.Random, template: str, year: int, agency: str, *, empty_cells: bool = True) -> ReportSpec:
    """A spec whose 三 and 四 add up (the hard identities of data/identities.csv pass), for sample pages:
    二 as `random_spec` draws it, 三 and 四 small plain counts."""
    spec = random_spec(rng, template, year, agency, empty_cells=empty_cells)
    cells = dict(spec.cells)
    codes = [code for code, _ in dd.applicants()]
    outcomes = sorted({m for (m, c), e in template_cells(template) if e.section == "三" and m not in _REQUESTS3})
    for code in codes[:-1]:
        n = {m: rng.choice((0, 0, 0, 1, 2, rng.randint(3, 40))) for m in outcomes}
        n["outcome_total"] = sum(n.values())
        n["requests_carried_forward"] = rng.randint(0, 3)
        n["requests_carried_over"] = rng.randint(0, n["outcome_total"] + n["requests_carried_forward"])
        n["requests_new"] = n["outcome_total"] + n["requests_carried_forward"] - n["requests_carried_over"]
        for m, v in n.items():
            cells[(m, code)] = str(v)
    for m in [*outcomes, *_REQUESTS3]:
        cells[(m, codes[-1])] = str(sum(int(cells[(m, c)]) for c in codes[:-1]))
    four = [e for _, e in template_cells(template) if e.section == "四"]
    for group in dict.fromkeys(e.row_key for e in four):
        parts = [e.metric for e in four if e.row_key == group and e.col_key != "total"]
        for m in parts:
            cells[(m, "")] = str(rng.choice((0, 0, 1, rng.randint(2, 9))))
        total = next(e.metric for e in four if e.row_key == group and e.col_key == "total")
        cells[(total, "")] = str(sum(int(cells[(m, "")]) for m in parts))
    return ReportSpec(spec.agency, spec.year, spec.template, cells)


def report_specs(allow_blanks: bool = True, *, empty_cells: bool = True, template: str | None = None):
    """Hypothesis strategy of specs. `allow_blanks`: blank cells and not-given markers ("/", "—",
    "无", "-") appear; `empty_cells=False` keeps the markers but never leaves a cell empty (for the
    one-cell-per-line style, which cannot print an empty cell)."""
    from hypothesis import strategies as st

    @st.composite
    def specs(draw):
        return _spec(_HypothesisDraw(draw), template, None, None, allow_blanks, empty_cells)

    return specs()


# -- the layout: tables of printed cells ----------------------------------------------------------


@dataclass(eq=False)
class _Cell:
    text: str  # "\n" marks where a long label wraps onto a second printed line
    kind: str = "label"  # label | header | value | caption | corner
    rs: int = 1
    cs: int = 1


@dataclass(eq=False)
class _Table:
    width: int
    rows: list[list[_Cell]]


@dataclass(eq=False)
class _Doc:
    title: str
    parts: list[tuple[str, Any]]  # ("heading", str) | ("para", str) | ("tables", list[_Table])


_CN = "一二三四五六七八九十"
_CORNER = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
_PARTIAL_NOTE = "（区分处理的，只计这一情形，不计其他情形）"
_HEADINGS = (
    "一、总体情况",
    "二、主动公开政府信息情况",
    "三、收到和处理政府信息公开申请情况",
    "四、政府信息公开行政复议、行政诉讼情况",
    "五、存在的主要问题及改进情况",
    "六、其他需要报告的事项",
)


# Styles that mostly print a long header over two lines (the text styles among them: over two cells).
_WRAPPING_STYLES = ("text_tab", "html_word", "text_bar_per_line", WRAPPED_CELL_STYLE)


class _Look:
    """The typographic habits of one rendering."""

    def __init__(self, rng: random.Random, style: str) -> None:
        self.rng = rng
        self.half_brackets = rng.random() < 0.3
        self.caption_space = rng.random() < 0.2
        self.wrap_headers = rng.random() < (0.8 if style in _WRAPPING_STYLES else 0.3)
        self.pad_values = style in ("text_tab", "html_word") and rng.random() < 0.5
        self.spaced_labels = rng.random() < 0.2  # "规 章": two-character labels spread over the cell

    def paren(self, inner: str) -> str:
        return f"({inner})" if self.half_brackets else f"（{inner}）"

    def caption(self, block: str) -> str:
        return f"第二十条{' ' if self.caption_space else ''}第{self.paren(_CN[int(block) - 1])}项"

    def wrap(self, label: str, at: int) -> str:
        return f"{label[:at]}\n{label[at:]}" if self.wrap_headers and 0 < at < len(label) else label

    def label(self, text: str) -> str:
        return f"{text[0]} {text[1]}" if self.spaced_labels and len(text) == 2 else text

    def value(self, text: str) -> str:
        if self.pad_values and text.strip() and self.rng.random() < 0.3:
            return self.rng.choice(_PADS).format(text)
        return text


def _table2(spec: ReportSpec, look: _Look) -> list[_Table]:
    width = 4
    tables = []
    for block, rows, cols in _blocks(spec.template):
        n = len(cols)
        head = [_Cell("信息内容", "header")]
        for i, (_, label) in enumerate(cols):
            cs = width - n if i == n - 1 else 1
            head.append(_Cell(look.wrap(label, 3) if label.startswith("本年新") else label, "header", cs=cs))
        body = [[_Cell(look.caption(block), "caption", cs=width)], head]
        for row_key, row_label in rows:
            row = [_Cell(look.label(row_label))]
            for i, (col_key, _) in enumerate(cols):
                metric = _metric_of(spec.template)[("二", row_key, col_key)]
                row.append(_Cell(look.value(spec.cells[(metric, "")]), "value", cs=width - n if i == n - 1 else 1))
            body.append(row)
        tables.append(_Table(width, body))
    return tables


def _numbered(level: int, index: int, label: str, look: _Look) -> str:
    if level == 0:
        return f"{_CN[index]}、{label}"
    if level == 1:
        return look.paren(_CN[index]) + label + (_PARTIAL_NOTE if label == "部分公开" else "")
    return f"{index + 1}.{label}"


def _table3(spec: ReportSpec, look: _Look) -> _Table:
    applicants = dd.applicants()  # natural person, five organisations, total
    orgs = [label for _, label in applicants[1:-1]]
    rows: list[list[_Cell]] = [
        [_Cell(_CORNER, "corner", rs=3, cs=3), _Cell("申请人情况", "header", cs=7)],
        [_Cell(applicants[0][1], "header", rs=2), _Cell("法人或其他组织", "header", cs=5),
         _Cell(applicants[-1][1], "header", rs=2)],
        [_Cell(look.wrap(label, 2) if len(label) == 4 else label, "header") for label in orgs],
    ]
    paths = _rows3(spec.template)
    # How many printed rows each label (a path prefix) spans, and the index of each label among
    # its siblings (for the numbering).
    leaves_under: dict[tuple[str, ...], int] = {}
    siblings: dict[tuple[str, ...], list[str]] = {}
    for _, path in paths:
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            leaves_under[prefix] = leaves_under.get(prefix, 0) + 1
            names = siblings.setdefault(prefix[:-1], [])
            if prefix[-1] not in names:
                names.append(prefix[-1])
    opened: set[tuple[str, ...]] = set()
    for metric, path in paths:
        row: list[_Cell] = []
        for depth in range(1, len(path) + 1):
            prefix = path[:depth]
            if prefix in opened:
                continue  # covered by the rowspan of a group label printed on an earlier row
            opened.add(prefix)
            label = _numbered(depth - 1, siblings[prefix[:-1]].index(prefix[-1]), prefix[-1], look)
            leaf = depth == len(path)
            row.append(_Cell(label, rs=1 if leaf else leaves_under[prefix], cs=3 - depth + 1 if leaf else 1))
        for code, _ in applicants:
            row.append(_Cell(look.value(spec.cells[(metric, code)]), "value"))
        rows.append(row)
    return _Table(10, rows)


def _table4(spec: ReportSpec, look: _Look) -> _Table:
    groups, results = _groups4(spec.template)
    (_, review_label), (_, direct_label), (_, after_label) = groups
    result_cells = [_Cell(label, "header") for _, label in results]
    values = [
        _Cell(look.value(spec.cells[(_metric_of(spec.template)[("四", g, r)], "")]), "value")
        for g, _ in groups
        for r, _ in results
    ]
    return _Table(15, [
        [_Cell(review_label, "header", cs=5), _Cell("行政诉讼", "header", cs=10)],
        [*(_Cell(c.text, "header", rs=2) for c in result_cells), _Cell(direct_label, "header", cs=5),
         _Cell(after_label, "header", cs=5)],
        [_Cell(label, "header") for _ in range(2) for _, label in results],
        values,
    ])


def _prose(spec: ReportSpec, rng: random.Random) -> dict[str, list[str]]:
    n, m = rng.randint(20, 3000), rng.randint(0, 400)
    first = [
        f"{spec.year}年，{spec.agency}按照条例的要求推进政务公开，依托门户网站和政务新媒体发布各类信息{n}条，"
        f"办理群众来信来电{m}件，公开工作总体平稳有序。",
        "本机关坚持把公开作为常态，完善发布前的保密审查和内容校对，重要政策与解读材料同步上网，"
        "公开目录按季度更新。",
    ]
    rng.shuffle(first)
    fifth = [
        "主要不足是部分栏目更新频率偏低，解读形式还不够丰富。下一步将加强业务培训，"
        "细化发布流程，提高公开内容的时效和质量。"
    ]
    sixth = ["本年度未收取信息处理费。" if spec.template == "2021" else "本年度无其他需要说明的事项。"]
    return {"一": first[: rng.randint(1, 2)], "五": fifth, "六": sixth}


def _document(spec: ReportSpec, rng: random.Random, style: str) -> _Doc:
    look = _Look(rng, style)
    prose = _prose(spec, rng)
    title = f"{spec.agency}{spec.year}年政府信息公开工作年度报告"
    parts: list[tuple[str, Any]] = [("heading", _HEADINGS[0])]
    parts += [("para", p) for p in prose["一"]]
    parts += [("heading", _HEADINGS[1]), ("tables", _table2(spec, look))]
    parts += [("heading", _HEADINGS[2]), ("tables", [_table3(spec, look)])]
    parts += [("heading", _HEADINGS[3]), ("tables", [_table4(spec, look)])]
    parts += [("heading", _HEADINGS[4])] + [("para", p) for p in prose["五"]]
    parts += [("heading", _HEADINGS[5])] + [("para", p) for p in prose["六"]]
    return _Doc(title, parts)


def _slots(table: _Table) -> list[list[tuple[_Cell, bool]]]:
    """Each grid row as the cells covering it, left to right, each once: (cell, starts on this row).
    A cell carried down by a rowspan appears on the later rows with False."""
    occupied: dict[tuple[int, int], _Cell] = {}
    out = []
    for r, row in enumerate(table.rows):
        c = 0
        for cell in row:
            while (r, c) in occupied:
                c += 1
            for dr in range(cell.rs):
                for dc in range(cell.cs):
                    occupied[(r + dr, c + dc)] = cell
            c += cell.cs
        starts = {id(cell) for cell in row}
        line: list[tuple[_Cell, bool]] = []
        seen: set[int] = set()
        for c in range(table.width):
            cell = occupied.get((r, c))
            if cell is not None and id(cell) not in seen:
                seen.add(id(cell))
                line.append((cell, id(cell) in starts))
        out.append(line)
    return out


# -- text styles ----------------------------------------------------------------------------------


def _render_text(doc: _Doc, style: str) -> str:
    lines: list[str] = [doc.title]
    tab = style == "text_tab"
    for kind, payload in doc.parts:
        if kind in ("heading", "para"):
            if tab:
                lines.append("")  # a line after a tab-indented row would read as its wrapped cell
            lines.append(payload)
            continue
        for table in payload:
            for slots in _slots(table):
                lines.extend(_text_row(table, slots, style))
    if style in ("text_cell_per_line", WRAPPED_CELL_STYLE):
        return "\n\n".join(lines) + "\n"
    return "\n".join(lines) + "\n"


def _text_row(table: _Table, slots: list[tuple[_Cell, bool]], style: str) -> list[str]:
    if style == "text_tab":
        # The seed's style: one cell per line, a rowspan carried down prints as a lone tab.
        return [f"\t{cell.text}" if start else "\t" for cell, start in slots] + [""]
    printed = [cell for cell, start in slots if start]
    fillers = table.width - len(printed)
    if style == "text_cell_per_line":
        return [cell.text.replace("\n", "") for cell in printed]
    if style == WRAPPED_CELL_STYLE:
        return [part for cell in printed for part in cell.text.split("\n")]  # a wrapped header: two cells
    if style == "text_bar_per_line":
        # One cell (or wrapped header part) per line, a line "|" after each; a row short of the
        # table's width ends with a "|" more per missing cell.
        out = [line for cell in printed for part in cell.text.split("\n") for line in (part, "|")]
        out[-1] = "|" * (1 + fillers)
        return out
    if style == "text_pipe_per_line":
        out = [f"{cell.text.replace(chr(10), '')} |" for cell in printed]
        return out + (["|" * fillers] if fillers else [])
    line = " | ".join(cell.text.replace("\n", " ") for cell in printed) + " |"
    if fillers:
        line += " " + "|" * fillers
    return ["| " + line if style == "text_markdown" else line]


# -- HTML styles ----------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False).replace("\u00a0", "&nbsp;")


def _attrs(cell: _Cell) -> str:
    out = ""
    if cell.rs > 1:
        out += f' rowspan="{cell.rs}"'
    if cell.cs > 1:
        out += f' colspan="{cell.cs}"'
    return out


def _plain_table(table: _Table, th: bool) -> str:
    out = ['<table border="1" cellspacing="0" cellpadding="4" style="border-collapse:collapse">', "<tbody>"]
    for row in table.rows:
        cells = []
        for c in row:
            tag = "th" if th and c.kind in ("header", "corner") else "td"
            cells.append(f"<{tag}{_attrs(c)}>{'<br>'.join(_esc(part) for part in c.text.split(chr(10)))}</{tag}>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _plain_body(doc: _Doc, rng: random.Random) -> str:
    out = [f"<h1>{_esc(doc.title)}</h1>" if rng.random() < 0.7 else f'<p class="title"><b>{_esc(doc.title)}</b></p>']
    heading_tag = rng.choice(("h2", "h3", "p"))
    th = rng.random() < 0.5  # header cells as <th>
    for kind, payload in doc.parts:
        if kind == "heading":
            out.append(f"<{heading_tag}>{_esc(payload)}</{heading_tag}>")
        elif kind == "para":
            out.append(f"<p>{_esc(payload)}</p>")
        else:
            # 二's blocks in one <table>, as the template prints them.
            out.append(_plain_table(_Table(payload[0].width, [row for t in payload for row in t.rows]), th))
    return "\n".join(out)


_WORD_TD = ("<td width={w} {span}valign=top style='width:{pt}pt;border:solid windowtext 1.0pt;"
            "border-top:none;padding:0cm 5.4pt 0cm 5.4pt'>")
_WORD_P = "<p class=MsoNormal align=center style='text-align:center'>"
_WORD_SPAN = "<span style='font-family:宋体'>"
_WORD_SPAN_EN = "<span lang=EN-US style='font-family:宋体'>"


def _word_runs(text: str, rng: random.Random, may_split: bool) -> str:
    """One printed line as Word runs: sometimes split mid-text into two <span>s (Word starts a new
    run when the language or the revision changes)."""
    if not text.strip():
        return f"{_WORD_SPAN_EN}&nbsp;</span>"
    if may_split and len(text) >= 2 and rng.random() < 0.35:
        at = rng.randint(1, len(text) - 1)
        return f"{_WORD_SPAN}{_esc(text[:at])}</span>{_WORD_SPAN_EN}{_esc(text[at:])}</span>"
    if rng.random() < 0.2:
        return f"{_WORD_SPAN}<font face=仿宋_GB2312>{_esc(text)}</font></span>"
    return f"{_WORD_SPAN}{_esc(text)}</span>"


def _word_cell(cell: _Cell, rng: random.Random) -> str:
    span = ""
    if cell.rs > 1:
        span += f"rowspan={cell.rs} "
    if cell.cs > 1:
        span += f"colspan={cell.cs} "
    w = 60 * cell.cs
    paragraphs = cell.text.split("\n")  # a wrapped label: one <p> per printed line
    if cell.rs > 1 and rng.random() < 0.5:
        paragraphs.insert(0, "")  # Word centres a tall cell's text with an empty paragraph above it
    inner = "".join(
        f"{_WORD_P}{_word_runs(p, rng, may_split=True)}<span lang=EN-US><o:p></o:p></span></p>" for p in paragraphs
    )
    return _WORD_TD.format(w=w, pt=w * 0.75, span=span) + inner + "</td>"


def _word_table(rows: list[list[_Cell]], rng: random.Random) -> str:
    out = ["<table class=MsoNormalTable border=1 cellspacing=0 cellpadding=0 width=600 "
           "style='width:450.0pt;border-collapse:collapse;border:none;mso-border-alt:solid windowtext .5pt;"
           "mso-yfti-tbllook:1184;mso-padding-alt:0cm 5.4pt 0cm 5.4pt'>"]
    for i, row in enumerate(rows):
        out.append(f"<tr style='mso-yfti-irow:{i};height:20.0pt'>")
        out.extend(_word_cell(c, rng) for c in row)
        out.append("</tr>")
    out.append("</table>")
    return "\n".join(out)


def _word_body(doc: _Doc, rng: random.Random) -> str:
    spacer = "<p class=MsoNormal><span lang=EN-US><o:p>&nbsp;</o:p></span></p>"
    out = [
        "<div class=WordSection1 style='layout-grid:15.6pt'>",
        "<p class=MsoNormal align=center style='text-align:center'><b>"
        f"{_word_runs(doc.title, rng, may_split=True)}</b><span lang=EN-US><o:p></o:p></span></p>",
    ]
    for kind, payload in doc.parts:
        if kind == "heading":
            out.append(f"<p class=MsoNormal style='text-indent:32.0pt'><b>{_word_runs(payload, rng, True)}</b>"
                       "<span lang=EN-US><o:p></o:p></span></p>")
        elif kind == "para":
            out.append(f"<p class=MsoNormal style='text-indent:32.0pt;line-height:28.0pt'>"
                       f"{_word_runs(payload, rng, False)}</p>")
        elif len(payload) == 1:
            out.append(_word_table(payload[0].rows, rng))
        else:
            # 二's blocks pasted as two tables with an empty paragraph between them.
            cut = rng.randint(1, len(payload) - 1)
            out.append(_word_table([row for t in payload[:cut] for row in t.rows], rng))
            out.append(spacer)
            out.append(_word_table([row for t in payload[cut:] for row in t.rows], rng))
        out.append(spacer if rng.random() < 0.3 else "")
    out.append("</div>")
    return "\n".join(x for x in out if x)


_WORD_HEAD = """<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office"
xmlns:w="urn:schemas-microsoft-com:office:word" xmlns="http://www.w3.org/TR/REC-html40">
<head>
<meta http-equiv=Content-Type content="text/html; charset=utf-8">
<meta name=ProgId content=Word.Document>
<meta name=Generator content="Microsoft Word 15">
{title}<style>
<!--
 p.MsoNormal, li.MsoNormal, div.MsoNormal
	{{margin:0cm;text-align:justify;text-justify:inter-ideograph;font-size:10.5pt;font-family:等线}}
table.MsoNormalTable
	{{mso-style-name:普通表格;mso-tstyle-rowband-size:0;mso-padding-alt:0cm 5.4pt 0cm 5.4pt}}
-->
</style>
</head>
<body lang=ZH-CN style='tab-interval:21.0pt;text-justify-trim:punctuation'>
"""

# -- page chrome ----------------------------------------------------------------------------------

_SITE_KINDS = ("人民政府", "人民政府门户网站")
_NAV = ("首页", "政务公开", "政务服务", "互动交流", "新闻中心", "通知公告", "部门动态", "乡镇动态",
        "政策文件", "政策解读", "人事信息", "财政预决算", "重点领域信息公开", "建议提案办理", "政府信息公开指南",
        "政府信息公开制度", "法定主动公开内容", "政府信息公开年报", "依申请公开", "机构职能", "领导信息",
        "规划计划", "统计信息", "应急管理", "招标采购", "民生实事", "在线访谈", "征集调查", "走进本地",
        "办事指南", "便民服务", "常见问题", "网站地图", "无障碍浏览", "长者模式", "English")
_FOOTER = ("主办单位：{site}办公室", "承办单位：{site}大数据中心", "网站标识码：{code}",
           "备案序号：浙ICP备{icp}号", "公安机关备案号：{icp}", "联系电话：0574-{tel}",
           "建议使用1920×1080分辨率浏览本网站", "版权所有 未经许可不得复制")
_CSS_RULE = ".{name}-{i} {{ margin: {a}px {b}px; padding: {b}px; color: #{c:06x}; font-size: {f}px; " \
            "line-height: 1.{a}; border-bottom: 1px solid #{d:06x}; }}\n"
_JS_LINE = "  var {name}{i} = document.getElementById('{name}-{i}'); if ({name}{i}) {{ {name}{i}.className " \
           "+= ' on'; {name}{i}.setAttribute('data-idx', '{i}'); }}\n"


def _pad(rng: random.Random, target: int) -> tuple[str, str, str, str]:
    """CSS, JS, navigation links and footer text of about `target` bytes in all."""
    css, js, nav, foot = [], [], [], []
    size = 0
    i = 0
    names = ("nav", "menu", "list", "item", "box", "col", "tab", "bar")
    while size < target:
        i += 1
        pick = rng.random()
        if pick < 0.3:
            s = _CSS_RULE.format(name=rng.choice(names), i=i, a=rng.randint(0, 40), b=rng.randint(0, 20),
                                 c=rng.randint(0, 0xFFFFFF), d=rng.randint(0, 0xFFFFFF), f=rng.randint(12, 18))
            css.append(s)
        elif pick < 0.6:
            s = _JS_LINE.format(name=rng.choice(names), i=i)
            js.append(s)
        elif pick < 0.95:
            s = (f'<li><a href="/col/col{rng.randint(1000, 99999)}/index.html" target="_blank" '
                 f'title="{rng.choice(_NAV)}">{rng.choice(_NAV)}</a></li>\n')
            nav.append(s)
        else:
            s = f"<p>{rng.choice(_NAV)} | {rng.choice(_NAV)} | {rng.choice(_NAV)}</p>\n"
            foot.append(s)
        size += len(s.encode("utf-8"))
    return "".join(css), "".join(js), "".join(nav), "".join(foot)


def _chrome_page(doc: _Doc, spec: ReportSpec, rng: random.Random, body: str, chrome_kb: int, cms: bool,
                 charset: bool) -> str:
    place = spec.agency[:3]
    site = place + rng.choice(_SITE_KINDS)
    target = max(chrome_kb * 1024 - 6000, 0) if cms else chrome_kb * 1024
    css, js, nav, foot = _pad(rng, target)
    facts = {"site": site, "code": rng.randint(10**9, 10**10 - 1), "icp": rng.randint(10**7, 10**8),
             "tel": rng.randint(10**7, 10**8 - 1)}
    footer = "".join(f"<span>{_esc(f.format(**facts))}</span>\n" for f in _FOOTER)
    meta = '<meta charset="utf-8">\n' if charset else ""
    head = (f"<!DOCTYPE html>\n<html>\n<head>\n{meta}<meta name=\"viewport\" content=\"width=device-width\">\n"
            f"<title>{_esc(doc.title)}_{_esc(site)}</title>\n")
    if css:
        head += f"<style type=\"text/css\">\n{css}</style>\n"
    if js:
        head += f"<script type=\"text/javascript\">\n(function () {{\n{js}}})();\n</script>\n"
    head += "</head>\n<body>\n"
    top = (f'<div class="top"><div class="logo">{_esc(site)}</div>\n<ul class="nav">\n'
           + "".join(f'<li><a href="/{n}/">{n}</a></li>\n' for n in _NAV[:8]) + "</ul>\n</div>\n")
    if not cms:
        return (head + top + (f'<ul class="links">\n{nav}</ul>\n' if nav else "") + f'<div class="content">\n{body}\n'
                f'</div>\n<div class="footer">\n{footer}{foot}</div>\n</body>\n</html>\n')
    published = f"{spec.year + 1}-{rng.randint(1, 3):02d}-{rng.randint(1, 28):02d}"
    box = (
        '<table class="xxgk-meta" width="100%">\n'
        f"<tr><td>索引号：</td><td>{rng.randint(10**8, 10**9 - 1)}/{spec.year + 1}-{rng.randint(1, 99999):05d}</td>"
        "<td>主题分类：</td><td>综合政务</td></tr>\n"
        f"<tr><td>发布机构：</td><td>{_esc(spec.agency)}</td><td>发布日期：</td><td>{published}</td></tr>\n"
        f'<tr><td>名称：</td><td colspan="3">{_esc(doc.title)}</td></tr>\n'
        "<tr><td>文号：</td><td></td><td>有效性：</td><td>有效</td></tr>\n"
        "</table>\n"
    )
    crumbs = ('<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/zwgk/">政务公开</a> &gt; '
              '<a href="/zwgk/ndbg/">政府信息公开年报</a></div>\n')
    share = ('<div class="share">分享到：<a href="#">微信</a> <a href="#">微博</a> <a href="#">QQ空间</a> '
             '【<a href="javascript:window.print()">打印本页</a>】【<a href="javascript:window.close()">关闭窗口</a>】'
             "</div>\n")
    side = '<ul class="side">\n' + "".join(f'<li><a href="/s/{i}/">{n}</a></li>\n' for i, n in enumerate(_NAV[8:]))
    side += nav + "</ul>\n"
    layout = (
        '<table class="layout" width="1200" border="0" cellspacing="0" cellpadding="0">\n<tr>\n'
        f'<td class="left" width="260" valign="top">\n{side}</td>\n'
        f'<td class="right" valign="top">\n{box}<div class="article" id="zoom">\n{body}\n</div>\n{share}</td>\n'
        "</tr>\n</table>\n"
    )
    return (head + top + crumbs + layout + f'<div class="footer">\n{footer}{foot}</div>\n'
            '<script type="text/javascript">var _hmt = _hmt || [];</script>\n</body>\n</html>\n')


def _render_html(doc: _Doc, spec: ReportSpec, style: str, rng: random.Random, chrome_kb: int) -> str:
    if style == "html_word":
        body = _word_body(doc, rng)
        if chrome_kb:
            return _chrome_page(doc, spec, rng, body, chrome_kb, cms=False, charset=True)
        title = f"<title>{_esc(doc.title)}</title>\n" if rng.random() < 0.6 else ""
        return _WORD_HEAD.format(title=title) + body + "\n</body>\n</html>\n"
    body = _plain_body(doc, rng)
    charset = style != "html_gbk"
    if style == "html_cms" or chrome_kb:
        return _chrome_page(doc, spec, rng, body, chrome_kb, cms=style == "html_cms", charset=charset)
    meta = '<meta charset="utf-8">\n' if charset else ""
    return (f"<!DOCTYPE html>\n<html>\n<head>\n{meta}<title>{_esc(doc.title)}</title>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


# -- entry point ----------------------------------------------------------------------------------


def _seed(spec: ReportSpec, style: str) -> int:
    h = hashlib.sha256(f"{spec.agency}|{spec.year}|{spec.template}|{style}".encode())
    for key in sorted(spec.cells):
        h.update(f"{key}={spec.cells[key]}\x00".encode())
    return int.from_bytes(h.digest()[:8], "big")


def render(spec: ReportSpec, style: str, *, chrome_kb: int = 0) -> bytes:
    """The page for `spec` in `style`, as bytes (UTF-8; GBK for html_gbk). `chrome_kb` (HTML styles
    only) pads the page chrome (navigation lists, footer, inline CSS/JS) to about that many KB."""
    if style not in (*STYLES, WRAPPED_CELL_STYLE):
        raise ValueError(f"unknown style {style!r}; expected one of {(*STYLES, WRAPPED_CELL_STYLE)}")
    missing = [key for key, _ in template_cells(spec.template) if key not in spec.cells]
    if missing:
        raise KeyError(f"spec lacks {len(missing)} cells of the {spec.template} template, e.g. {missing[0]}")
    if chrome_kb and style not in HTML_STYLES:
        raise ValueError("chrome_kb applies to HTML styles only")
    if style in ("text_cell_per_line", WRAPPED_CELL_STYLE) and any(not t.strip() for t in spec.cells.values()):
        raise ValueError(f"{style} cannot print an empty cell")
    rng = random.Random(_seed(spec, style))
    doc = _document(spec, rng, style)
    if style in HTML_STYLES:
        page = _render_html(doc, spec, style, rng, chrome_kb)
        return page.encode("gbk" if style == "html_gbk" else "utf-8")
    return _render_text(doc, style).encode("utf-8")

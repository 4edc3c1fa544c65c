"""Cell grids -> recognised values: which section, block, template, row and column each cell is.

The reader walks the cells of the report's tables in reading order, as one stream, keeping what it
has seen (section, 二 block and its column header, 三 group). A row label opens a row; the cells
that follow are its values, as many as the block's columns (二), the applicant columns (三, 7) or
the result columns (四). Rows end at the grid's row boundary where rows mean something (HTML, pipe
rows, the seed's style) and by counting where they do not (one cell per line). A table split into
several <table> elements, or a page whose section headings sit between tables, reads the same.

All labels come from data/dictionary.csv, data/aliases.csv and data/structure.csv.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache

from govreports.extract.cells import Cell, Table
from govreports.extract.textcache import PAGE_TEXTS, text_cache
from govreports.transform import dictionary as dd
from govreports.transform.labels import caption_block, label_key
from govreports.transform.values import CellValue, parse_value

# Token kinds
EMPTY, VALUE, CAPTION, HEADING, HEADER, LABEL, UNKNOWN = range(7)
_MAX_LABEL = 48  # longer text is prose, not a label
_PREFIX_MIN, _PREFIX_RATIO = 4, 0.6  # a truncated label ("现行有效件") must keep most of itself
_N_APPLICANTS = 7
_N_RESULTS = 5


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # row2 | col2 | row3 | applicant | group4 | result4
    key: str  # row_key / col_key / metric / applicant code / group / result
    block: str = ""  # 二 rows
    templates: frozenset[str] = frozenset(dd.TEMPLATES)  # 二 columns: templates that print it
    parents: tuple[str, ...] = ()  # 三: label keys of the enclosing groups
    is_group: bool = False  # 三: has sub-rows


@dataclass(slots=True)
class Found:
    """One recognised value cell."""

    section: str
    metric: str | None
    row_label: str
    column_label: str | None
    applicant: str | None
    template: str
    unit: str
    parsed: CellValue
    table: int
    row: int
    col: int
    page: int | None  # the cell's page in a PDF


@dataclass(slots=True)
class Recognition:
    values: list[Found]
    template: str | None  # the report's template (most blocks)
    truncated: bool
    problems: list[str]
    sections: set[str]  # sections whose tables were found
    label_hits: int  # how many cells were recognised as report labels at all


_SECTION_OF = {"row2": "二", "col2": "二", "row3": "三", "applicant": "三", "group4": "四", "result4": "四"}


@cache
def _label_index() -> dict[str, tuple[Hit, ...]]:
    index: dict[str, list[Hit]] = {}

    def add(label: str, hit: Hit) -> None:
        hits = index.setdefault(label_key(label), [])
        if hit not in hits:
            hits.append(hit)

    col_templates: dict[str, set[str]] = {}
    col_keys: dict[str, str] = {}
    groups3: set[str] = set()
    for e in dd.entries():
        if e.section == "三":
            parts = e.row_label.split("/")
            for i in range(1, len(parts)):
                groups3.add("/".join(parts[:i]))
    for e in dd.entries():
        if e.section == "二":
            add(e.row_label, Hit("row2", e.row_key, block=e.block))
            col_templates.setdefault(e.column_label, set()).update(e.templates)
            col_keys[e.column_label] = e.col_key
        elif e.section == "三":
            parts = e.row_label.split("/")
            parents = tuple(label_key(p) for p in parts[:-1])
            add(parts[-1], Hit("row3", e.metric, parents=parents, is_group=e.row_label in groups3))
            add(e.applicant, Hit("applicant", e.col_key))
        else:
            add(e.row_label, Hit("group4", e.row_key))
            add(e.column_label, Hit("result4", e.col_key))
    for label, templates in col_templates.items():
        add(label, Hit("col2", col_keys[label], templates=frozenset(templates)))
    # Pure groups (本年度办理结果) carry no metric of their own.
    for g in groups3:
        parts = g.split("/")
        if not any(h.kind == "row3" and h.is_group for h in index.get(label_key(parts[-1]), [])):
            add(parts[-1], Hit("row3", "", parents=tuple(label_key(p) for p in parts[:-1]), is_group=True))
    for printed, official in dd.label_aliases().items():
        index.setdefault(label_key(printed), []).extend(
            h for h in index.get(label_key(official), []) if h not in index.get(label_key(printed), [])
        )
    return {k: tuple(v) for k, v in index.items()}


@cache
def _leaf_metrics() -> frozenset[str]:
    """Metrics that are a cell of some template (not only a subtotal some agencies add)."""
    return frozenset(e.metric for e in dd.entries() if e.kind == "cell")


@cache
def _structure() -> tuple[tuple[str, str, str, str], ...]:
    return tuple((label_key(r["pattern"]), r["match"], r["section"], r["role"]) for r in dd.structure())


@lru_cache(maxsize=65536)
def _lookup(key: str) -> tuple[Hit, ...]:
    index = _label_index()
    if key in index:
        return index[key]
    if _PREFIX_MIN <= len(key) <= _MAX_LABEL:
        found = [k for k in index if k.startswith(key) and len(key) / len(k) >= _PREFIX_RATIO]
        if len(found) == 1:
            return index[found[0]]
    return ()


@text_cache(maxsize=PAGE_TEXTS)
def classify(text: str) -> tuple[int, object]:
    """What one cell's text is: empty, a value, a 二 caption, a section heading, a structural
    header word, a known label (with its possible meanings), or unknown text."""
    if not text.strip():
        return EMPTY, None
    parsed = parse_value(text)
    if parsed.status in ("number", "na"):
        return VALUE, None
    if len(text) > 16 * _MAX_LABEL:
        return UNKNOWN, None  # prose, not a label: and label_key need not see it
    block = caption_block(text)
    if block:
        return CAPTION, block
    key = label_key(text)
    if not key or len(key) > 4 * _MAX_LABEL:
        return UNKNOWN, None
    for pattern, match, section, role in _structure():
        if match == "heading":
            if pattern in key and len(key) <= len(pattern) + 10:
                return HEADING, section or None
        elif (match == "exact" and key == pattern) or (match == "contains" and pattern in key):
            return HEADER, (section, role)
    hits = _lookup(key) if len(key) <= _MAX_LABEL else ()
    return (LABEL, hits) if hits else (UNKNOWN, None)


@dataclass(slots=True)
class _Row:
    kind: str  # row2 | row3 | row4 | group4 | extra2 | extra3
    need: int
    table: int
    key: str = ""  # row_key / metric / group
    label: str = ""  # the printed label
    block: str = ""
    columns: list[tuple[str | None, str]] | None = None  # 二: (col_key, printed) per column
    column_templates: frozenset[str] | None = None
    tentative: bool = False  # a group label: drop quietly if no values follow
    cells: list[Cell] = field(default_factory=list)
    short: bool = False


class _Reader:
    def __init__(self) -> None:
        self.section: str | None = None
        self.block: str | None = None
        self.columns: list[tuple[str | None, str]] | None = None
        self.column_templates: frozenset[str] | None = None
        self.header_open = False
        self.group3: tuple[str, ...] = ()
        self.phase3: str | None = None  # header | rows
        self.pending: _Row | None = None
        self.rows: list[_Row] = []
        self.problems: list[str] = []
        self.sections: set[str] = set()
        self.label_hits = 0
        self.table = 0
        self.delimited = True
        self.results4 = False  # the 四 result header (结果维持 …) has been read

    # -- driving --------------------------------------------------------------------------------
    def feed(self, table: Table) -> None:
        self.table = table.index
        self.delimited = table.row_delimited
        for row in table.rows:
            cells = [c for c in row if not c.copy]
            end = len(cells)
            while end > 3 * _N_RESULTS and not cells[end - 1].text.strip():
                end -= 1  # trailing filler cells ("… | 0 | | |")
            cells = cells[:end]
            if table.row_delimited and self.section == "四" and self._is_row4(cells, self._has_row4()):
                # A grid row of exactly 15 values: take them by position, so that a blank first
                # cell is a blank 行政复议 结果维持, not the start of a shifted row.
                self.rows.append(_Row("row4", 3 * _N_RESULTS, self.table, cells=cells))
                continue
            for cell in cells:
                self.token(cell)
            if table.row_delimited:
                self.end_row()

    @staticmethod
    def _is_row4(cells: list[Cell], have_one: bool) -> bool:
        """A grid row of 15 value cells; all blank counts too when it is the first after the header."""
        if len(cells) != 3 * _N_RESULTS:
            return False
        kinds = [classify(c.text)[0] for c in cells]
        return (VALUE in kinds or not have_one) and all(k in (VALUE, EMPTY, UNKNOWN) for k in kinds)

    def _has_row4(self) -> bool:
        return any(r.kind in ("row4", "group4") for r in self.rows)

    def end_row(self) -> None:
        if self.pending is not None:
            self.close(self.pending, complete=False)
            self.pending = None
        self.header_open = False

    # -- one cell -------------------------------------------------------------------------------
    def token(self, cell: Cell) -> None:
        kind, payload = classify(cell.text)
        p = self.pending
        if p is not None:
            if kind in (VALUE, EMPTY, UNKNOWN):
                p.cells.append(cell)
                # Where rows carry meaning the row's end closes it (see close); else count.
                if len(p.cells) >= p.need and not self.delimited:
                    self.close(p, complete=True)
                    self.pending = None
                return
            self.close(p, complete=False)
            self.pending = None
        if kind == EMPTY:
            if self.section == "四" and not self.delimited and self.results4 and not self._has_row4():
                # One cell per line (" |" lines): the first blank after the result header opens the row.
                self.pending = _Row("row4", 3 * _N_RESULTS, self.table, cells=[cell])
            return
        if kind == CAPTION:
            self.enter("二")
            self.block, self.columns, self.column_templates, self.header_open = payload, None, None, False
        elif kind == HEADING:
            self.section, self.block, self.columns, self.header_open = payload, None, None, False
            self.group3 = ()
        elif kind == HEADER:
            section, role = payload
            self.enter(section)
            if role == "columns":
                self.header_open, self.columns, self.column_templates = True, [], None
            elif section == "三" and self.phase3 != "rows":
                self.phase3 = "header"
        elif kind == VALUE:
            if self.section == "四":
                self.pending = _Row("row4", 3 * _N_RESULTS, self.table, cells=[cell])
        elif kind == LABEL:
            self.label_hits += 1
            self.label(cell, payload)
        elif self.header_open:
            self.columns.append((None, cell.text))
        elif self.section == "二" and self.block and self.columns is not None:
            self.pending = _Row("extra2", len(self.columns), self.table, label=cell.text, block=self.block,
                                columns=self.columns, column_templates=self.column_templates, tentative=True)
        elif self.section == "三" and self.phase3 == "rows":
            self.pending = _Row("extra3", _N_APPLICANTS, self.table, label=cell.text, tentative=True)

    def enter(self, section: str | None) -> None:
        if section != self.section:
            self.section, self.block, self.columns, self.header_open = section, None, None, False
        if section:
            self.sections.add(section)

    def label(self, cell: Cell, hits: tuple[Hit, ...]) -> None:
        here = [h for h in hits if _SECTION_OF[h.kind] == self.section]
        if self.section == "三":
            # Before the first row label, 总计 and 其他 are applicant columns; after, rows.
            wanted = "applicant" if self.phase3 != "rows" else "row3"
            here = [h for h in here if h.kind == wanted] or [h for h in here if h.kind == "row3"]
            here = [h for h in here if h.kind != "row3" or self._fits_group(h)]
        if not here:
            sections = {_SECTION_OF[h.kind] for h in hits}
            if len(sections) != 1:
                return  # ambiguous outside its section (总计, 其他): header noise
            here = [h for h in hits if h.kind != "row3" or self._fits_group(h)]
            if not here:
                return
            self.enter(sections.pop())
        hit = here[0]
        if hit.kind == "col2":
            if not self.header_open:
                self.header_open, self.columns, self.column_templates = True, [], None
            self.columns.append((hit.key, cell.text))
            t = self.column_templates
            self.column_templates = hit.templates if t is None else (t & hit.templates) or t
        elif hit.kind == "row2":
            self.header_open = False
            if self.block != hit.block:
                self.block, self.columns, self.column_templates = hit.block, None, None
            columns = self.columns
            need = len(columns) if columns else max(
                len(dd.block_columns().get((hit.block, t), ())) for t in dd.TEMPLATES)
            self.pending = _Row("row2", max(need, 1), self.table, key=hit.key, label=cell.text, block=hit.block,
                                columns=columns, column_templates=self.column_templates)
        elif hit.kind == "row3":
            self.phase3 = "rows"
            self.group3 = (*hit.parents, label_key(cell.text)) if hit.is_group else hit.parents
            self.pending = _Row("row3", _N_APPLICANTS, self.table, key=hit.key, label=cell.text,
                                tentative=hit.is_group)
        elif hit.kind == "applicant":
            if self.phase3 is None:
                self.phase3 = "header"
        elif hit.kind == "result4":
            self.results4 = True
        elif hit.kind == "group4":
            self.pending = _Row("group4", _N_RESULTS, self.table, key=hit.key, label=cell.text, tentative=True)

    def _fits_group(self, hit: Hit) -> bool:
        """A 三 label nested two deep (其他处理/其他) only counts inside its group."""
        return len(hit.parents) <= 1 or self.group3[: len(hit.parents)] == hit.parents

    def close(self, row: _Row, complete: bool) -> None:
        if row.tentative and not any(c.text.strip() for c in row.cells) and not (
            row.key in _leaf_metrics() and len(row.cells) >= row.need
        ):
            # A group label followed by nothing, or by the fillers of a spanning header. A full row of
            # blanks stays when the label is a row of its own in some template (2019 （六）其他处理).
            return
        if self.delimited and len(row.cells) > row.need:
            # A grid row with more cells than columns: trailing fillers ("| 15 | |") or an empty
            # label cell before the values (a subtotal row under a spanning group label).
            cells = row.cells
            start, end = 0, len(cells)
            while end - start > row.need and not cells[end - 1].text.strip():
                end -= 1
            while end - start > row.need and not cells[start].text.strip():
                start += 1
            cells = cells[start:end]
            lead = cells[: len(cells) - row.need]
            if lead and all(classify(c.text)[0] == UNKNOWN and parse_value(c.text).status == "unparsed"
                            for c in lead):
                # Text before a full row of values: the label of a row not recognised (cut in two by a page
                # break, misprinted). Whose values these are is not certain: kept unparsed, never shifted.
                self.problems.append(f"row {row.label.strip() or row.kind}: unknown text "
                                     f"{' '.join(c.text for c in lead)!r} before its values")
                cells, row.short = cells[len(lead):], True
            elif len(cells) > row.need:
                self.problems.append(f"row {row.label.strip() or row.kind} has {len(cells)} cells for "
                                     f"{row.need} columns; the first {row.need} were read")
            row.cells = cells[: row.need]
            complete = True
        elif len(row.cells) >= row.need:
            complete = True
        if not complete:
            if row.kind.startswith("extra") and not any(
                parse_value(c.text).status == "number" for c in row.cells
            ):
                return  # prose followed by a blank is not an extra row
            if len(row.cells) < row.need:
                row.short = True
        self.rows.append(row)

    def finish(self, complete: bool) -> bool:
        """End of input: a row still open means the report was cut off, and so does input that
        stops inside a table section (unless it is a whole HTML document)."""
        truncated = False
        if self.pending is not None:
            p = self.pending
            self.pending = None
            if p.cells or not p.tentative:
                truncated = True
                self.problems.append(f"input ends inside the row {p.label.strip() or p.kind!r}")
                self.close(p, complete=False)
        if complete:
            return truncated
        seen = {r.key for r in self.rows if r.kind == "row3"}
        if self.section == "二":
            truncated = True
            self.problems.append("input ends inside section 二")
        if self.section == "三" and "requests_carried_forward" not in seen:
            truncated = True
            self.problems.append("input ends inside section 三 (no 结转下年度继续办理 row)")
        if self.section == "四" and not any(r.kind in ("row4", "group4") for r in self.rows):
            truncated = True
            self.problems.append("input ends inside section 四 (no values)")
        return truncated


def _block_template(row: _Row) -> str | None:
    if row.column_templates and len(row.column_templates) == 1:
        return next(iter(row.column_templates))
    n = len(row.columns) if row.columns else len(row.cells)
    fits = [t for t in dd.TEMPLATES if len(dd.block_columns().get((row.block, t), ())) == n]
    return fits[0] if len(fits) == 1 else None


def _section3_template(rows: list[_Row]) -> str | None:
    keys = {r.key for r in rows if r.kind == "row3"}
    if keys & {"outcome_other_no_correction", "outcome_other_no_fee", "outcome_other_other"}:
        return "2021"
    if "outcome_other" in keys:
        return "2019"
    return None


@cache
def _entry_for_column(block: str, template: str, col_key: str | None) -> dd.Entry | None:
    for e in dd.entries():
        if e.section == "二" and e.block == block and template in e.templates and e.col_key == col_key:
            return e
    return None


def recognise(tables: list[Table], year: int | None = None, complete: bool = False) -> Recognition:
    """Read the report's values out of its tables (in document order). `complete`: the input is
    known to be whole (an HTML document with its closing tag)."""
    reader = _Reader()
    for table in tables:
        reader.feed(table)  # closes each row of a row-delimited table itself
    truncated = reader.finish(complete)
    rows = reader.rows
    problems = reader.problems

    votes: Counter[str] = Counter()
    block_templates = {id(r): _block_template(r) for r in rows if r.kind in ("row2", "extra2")}
    for t in block_templates.values():
        if t:
            votes[t] += 1
    t3 = _section3_template(rows)
    if t3:
        votes[t3] += 1
    if votes:
        report_template = max(sorted(votes), key=lambda t: votes[t])
    elif rows:
        report_template = "2021" if (year or 0) >= 2021 else "2019"
        problems.append(f"template not printed in the headers; taken as {report_template} from the year")
    else:
        report_template = None

    values: list[Found] = []
    seen: set[tuple[str | None, str | None]] = set()
    cells_index = dd.cell_index()
    applicants = dd.applicants()

    def emit(section: str, entry: dd.Entry | None, row_label: str, column_label: str | None,
             applicant: str | None, template: str, unit: str, cell: Cell, short: bool, table: int) -> None:
        metric = entry.metric if entry else None
        if metric is not None:
            key = (metric, applicant)
            if key in seen:
                problems.append(f"{metric} {applicant or ''} printed twice; the later cell was ignored".strip())
                return
            seen.add(key)
        parsed = parse_value(cell.text, unit)
        if short and parsed.status != "blank":
            parsed = CellValue(None, "unparsed", parsed.raw)  # its column is not certain
        values.append(Found(section, metric, row_label, column_label, applicant, template, unit, parsed,
                            table, cell.row, cell.col, cell.page))

    for row in rows:
        if row.short:
            problems.append(f"row {row.label.strip() or row.kind} has {len(row.cells)} of {row.need} cells; "
                            "its values are kept unparsed")
        if row.kind in ("row2", "extra2"):
            t = block_templates[id(row)] or report_template
            canonical = dd.block_columns().get((row.block, t), ())
            cols = [c for c, _ in row.columns] if row.columns else list(canonical)
            if len(cols) == len(canonical):
                cols = [c or canonical[i] for i, c in enumerate(cols)]  # ambiguous header words
            printed = [p for _, p in row.columns] if row.columns else [None] * len(cols)
            for i, cell in enumerate(row.cells):
                col = cols[i] if i < len(cols) else None
                entry = cells_index.get(("二", row.block, t, row.key, col)) if row.kind == "row2" else None
                like = entry or _entry_for_column(row.block, t, col)
                row_label = entry.row_label if entry else " ".join(row.label.split())
                column_label = like.column_label if like else (printed[i] if i < len(printed) else None)
                emit("二", entry, row_label, column_label, None, t, like.unit if like else "count", cell,
                     row.short, row.table)
        elif row.kind in ("row3", "extra3"):
            t = t3 or report_template
            for i, cell in enumerate(row.cells):
                code, applicant = applicants[i] if i < len(applicants) else (None, None)
                entry = None
                if row.kind == "row3" and row.key:
                    entry = cells_index.get(("三", "", t, row.key, code)) or next(
                        (cells_index[k] for k in cells_index if k[0] == "三" and k[3:] == (row.key, code)), None)
                row_label = entry.row_label if entry else " ".join(row.label.split())
                emit("三", entry, row_label, applicant, applicant, t, "count", cell, row.short, row.table)
        else:
            groups = [row.key] if row.kind == "group4" else ["review", "suit_direct", "suit_after_review"]
            results = ["upheld", "corrected", "other", "pending", "total"]
            t = report_template
            for i, cell in enumerate(row.cells):
                g, r = groups[i // _N_RESULTS], results[i % _N_RESULTS]
                entry = cells_index.get(("四", "", t, g, r))
                emit("四", entry, entry.row_label if entry else g, entry.column_label if entry else r, None, t,
                     "count", cell, row.short, row.table)

    found = {v.section for v in values}
    for section in ("二", "三", "四"):
        if values and section not in found:
            problems.append(f"section {section}: no table found")
    return Recognition(values, report_template, truncated, problems, found, reader.label_hits)


"""Text renderings of report tables -> one cell grid.

Reports circulate as text in three shapes:
- cells separated by " | " on a line, one line per row (with or without leading/trailing pipes,
  with empty filler cells): rows are meaningful;
- one cell per line, tab-indented, a blank line between rows, long cells wrapped onto lines that
  are not indented (the seed's style): rows are meaningful;
- one cell per line with no row marks (blank lines between every cell, every line ending in " |"
  with filler lines "|||", or cells separated by lines of "|" alone, as some HTML-to-text tools
  write): rows are not meaningful, and the table reader counts cells.
Lines outside tables (prose, headings) become one-cell rows: headings still tell the section.
Where cells are counted, a header wrapped over two cells ("本年新" then "制作数量") would count twice:
fragments that join exactly into a known column label (data/dictionary.csv, data/aliases.csv) are
one cell; anything else stays as printed, so a near miss leaves its rows short and unparsed.
"""

from __future__ import annotations

from functools import cache

from govreports.extract.cells import Budget, Cell, Table
from govreports.transform import dictionary as dd
from govreports.transform.labels import label_key

_TAB_STYLE_MIN = 8  # tab-indented lines needed before the text counts as the seed's style
_PIPE_STYLE_MIN = 3  # lines with pipes needed before the text counts as piped (prose has none)
_MAX_FRAGMENTS = 3  # a header wrapped over more cells than this is not joined


@cache
def _header_keys() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(column label keys, their proper prefixes, every label key): the header labels of the
    templates (二 and 四 columns, 四 groups, 三 applicants) and their printed aliases."""
    headers = {e.column_label for e in dd.entries()} | {e.applicant for e in dd.entries() if e.applicant}
    headers |= {e.row_label for e in dd.entries() if e.section == "四"}
    aliases = dd.label_aliases()
    headers |= {printed for printed, official in aliases.items() if official in headers}
    keys = frozenset(label_key(h) for h in headers) - {""}
    prefixes = frozenset(k[:i] for k in keys for i in range(1, len(k)))
    rows = {part for e in dd.entries() for part in e.row_label.split("/")}
    return keys, prefixes, keys | {label_key(label) for label in rows | set(aliases)}


def _wrap_end(rows: list[list[Cell]], start: int) -> int:
    """The end of the header fragments starting at rows[start] (one-cell rows), or 0 when that cell
    is not the start of a wrapped header: joined, the fragments must be a column label exactly."""
    keys, prefixes, every = _header_keys()
    first = label_key(rows[start][0].text)
    if first in every or first not in prefixes:
        return 0  # a whole label, or no label starts so
    text = rows[start][0].text
    for end in range(start + 1, min(start + _MAX_FRAGMENTS, len(rows))):
        if len(rows[end]) != 1:
            return 0
        text += rows[end][0].text
        key = label_key(text)
        if key in keys:
            return end + 1
        if key not in prefixes:
            return 0
    return 0


def _join_wrapped(rows: list[list[Cell]]) -> list[list[Cell]]:
    out: list[list[Cell]] = []
    i = 0
    while i < len(rows):
        end = _wrap_end(rows, i) if len(rows[i]) == 1 else 0
        if end:
            first = rows[i][0]
            out.append([Cell("\n".join(r[0].text for r in rows[i:end]), first.row, first.col)])
            i = end
        else:
            out.append(rows[i])
            i += 1
    return out


def _pipe_cells(line: str) -> list[str]:
    parts = line.split("|")
    if parts and (parts[0] == "" or not line.strip().strip("|")):
        parts = parts[1:]  # a leading pipe (markdown) or a filler-only line; " | x" is a blank first cell
    if parts and not parts[-1].strip():
        parts = parts[:-1]  # trailing pipe
    return parts


def _pipe_table(lines: list[str], budget: Budget) -> Table:
    filled = [sum(1 for c in line.split("|") if c.strip()) for line in lines if "|" in line]
    # "label | value | value" lines make rows; "cell |" lines (one cell each) do not.
    row_delimited = sum(n >= 2 for n in filled) >= filled.count(1)
    rows: list[list[Cell]] = []
    for n, line in enumerate(lines):
        if "|" not in line:
            if line.strip():
                budget.spend(1)
                rows.append([Cell(line, n, 0)])
            continue
        if not row_delimited and not line.replace("|", "").strip():
            # One cell per line: " |" is one blank cell, while a line of pipes alone ("||",
            # "|||") is the filler a colspan left behind.
            if line.count("|") == 1:
                budget.spend(1)
                rows.append([Cell("", n, 0)])
            continue
        texts = _pipe_cells(line)
        budget.spend(len(texts))
        rows.append([Cell(text, n, i) for i, text in enumerate(texts)])
    return Table(index=0, rows=rows if row_delimited else _join_wrapped(rows), row_delimited=row_delimited)


def _is_bar(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.strip("|")


def _bar_table(lines: list[str], budget: Budget) -> Table:
    """Cells separated by lines of "|" alone (more pipes where a row ends short of the table's
    width). A line alone between two bars is a cell even when blank; elsewhere (prose, headings,
    the first cell of a table after its heading) each non-blank line is a cell."""
    rows: list[list[Cell]] = []
    segment: list[int] = []
    for n, line in enumerate([*lines, ""]):
        if n < len(lines) and not _is_bar(line):
            segment.append(n)
            continue
        between_bars = n < len(lines) and len(segment) == 1 and segment[0] > 0 and _is_bar(lines[segment[0] - 1])
        cells = [Cell(lines[k], k, 0) for k in segment if between_bars or lines[k].strip()]
        budget.spend(len(cells))
        rows.extend([c] for c in cells)
        segment = []
    return Table(index=0, rows=_join_wrapped(rows), row_delimited=False)


def _tab_table(lines: list[str], budget: Budget) -> Table:
    rows: list[list[Cell]] = []
    current: list[Cell] = []
    wrapped: dict[int, list] = {}
    in_table = False
    for n, line in enumerate(lines):
        if line.startswith("\t"):
            budget.spend(1)
            current.append(Cell(line[1:], n, len(current)))
            in_table = True
        elif in_table and line.strip():
            wrapped.setdefault(id(current[-1]), [current[-1]]).append(line)  # a cell wrapped onto the next line
        else:  # a blank line ends the row; a line outside a table is a row of its own
            if current:
                rows.append(current)
                current = []
            in_table = False
            if line.strip():
                budget.spend(1)
                rows.append([Cell(line, n, 0)])
    if current:
        rows.append(current)
    for cell, *more in wrapped.values():
        cell.text = "\n".join([cell.text, *more])
    return Table(index=0, rows=rows, row_delimited=True)


def _line_table(lines: list[str], budget: Budget) -> Table:
    budget.spend(sum(1 for line in lines if line.strip()))
    rows = [[Cell(line, n, 0)] for n, line in enumerate(lines) if line.strip()]
    return Table(index=0, rows=_join_wrapped(rows), row_delimited=False)


def text_table(text: str, budget: Budget | None = None) -> Table:
    """Read a text rendering of a report into one table, choosing the shape from the text. Its cells
    are spent from the page's budget: ParseFailure past it."""
    budget = Budget() if budget is None else budget
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    piped = sum(1 for line in lines if "|" in line)
    tabbed = sum(1 for line in lines if line.startswith("\t"))
    bars = sum(1 for line in lines if _is_bar(line))
    if piped >= _PIPE_STYLE_MIN and piped >= tabbed and bars > 3 * (piped - bars):
        return _bar_table(lines, budget)  # pipes on lines of their own, not after cells
    if piped >= _PIPE_STYLE_MIN and piped >= tabbed:
        return _pipe_table(lines, budget)
    if tabbed >= _TAB_STYLE_MIN:
        return _tab_table(lines, budget)
    return _line_table(lines, budget)

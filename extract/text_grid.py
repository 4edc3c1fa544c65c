"""Text renderings of report tables -> one cell grid.

Reports circulate as text in three shapes:
- cells separated by " | " on a line, one line per row (with or without leading/trailing pipes,
  with empty filler cells): rows are meaningful;
- one cell per line, tab-indented, a blank line between rows, long cells wrapped onto lines that
  are not indented (the seed's style): rows are meaningful;
- one cell per line with no row marks (blank lines between every cell, or every line ending in
  " |" with filler lines "|||"): rows are not meaningful, and the table reader counts cells.
Lines outside tables (prose, headings) become one-cell rows: headings still tell the section.
"""

from __future__ import annotations

from govreports.extract.cells import Budget, Cell, Table

_TAB_STYLE_MIN = 8  # tab-indented lines needed before the text counts as the seed's style
_PIPE_STYLE_MIN = 3  # lines with pipes needed before the text counts as piped (prose has none)


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
    return Table(index=0, rows=rows, row_delimited=row_delimited)


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
    return Table(index=0, rows=rows, row_delimited=False)


def text_table(text: str, budget: Budget | None = None) -> Table:
    """Read a text rendering of a report into one table, choosing the shape from the text. Its cells
    are spent from the page's budget: ParseFailure past it."""
    budget = Budget() if budget is None else budget
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    piped = sum(1 for line in lines if "|" in line)
    tabbed = sum(1 for line in lines if line.startswith("\t"))
    if piped >= _PIPE_STYLE_MIN and piped >= tabbed:
        return _pipe_table(lines, budget)
    if tabbed >= _TAB_STYLE_MIN:
        return _tab_table(lines, budget)
    return _line_table(lines, budget)

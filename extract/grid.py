"""HTML <table> element -> cell grid, with rowspan/colspan expanded."""

from __future__ import annotations

from lxml import etree

from govreports.extract.cells import Budget, Cell, Table

# Hostile or broken markup can ask for absurd spans; real report tables are far below these.
MAX_ROWSPAN = 500
MAX_COLSPAN = 64
_SKIP_TEXT = {"script", "style", "table"}  # a nested table is a table of its own


def _span(value: str | None, cap: int) -> int:
    if value is None:  # the common case, without the cost of an exception
        return 1
    try:
        n = int(str(value).strip().rstrip(";"))
    except (TypeError, ValueError):
        return 1
    return min(max(n, 1), cap)


def cell_text(el: etree._Element, plain: bool = False) -> str:
    """A cell's printed text, whitespace runs (markup indentation, <br>, &nbsp;) folded to one space:
    labels ignore whitespace and a value never spans lines. A table nested in the cell is a table of
    its own and its text stays out. `plain`: the caller knows the cell holds no table, script or style."""
    if plain or (el.find(".//table") is None and el.find(".//script") is None and el.find(".//style") is None):
        return " ".join(etree.tostring(el, method="text", encoding=str, with_tail=False).split())
    return " ".join(_walk_text(el).split())


def _walk_text(el: etree._Element) -> str:
    """The slow path of cell_text: walk the cell, skipping nested tables, scripts and styles."""
    parts: list[str] = []
    if el.text:
        parts.append(el.text)
    stack = list(reversed(el))
    # Iterative walk: markup can be nested far deeper than Python's recursion limit.
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            parts.append(node)
            continue
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag not in _SKIP_TEXT:
            if tag in ("br", "p", "div"):
                parts.append("\n")
            if node.text and isinstance(node.tag, str):
                parts.append(node.text)
            if node.tail:
                stack.append(node.tail)
            stack.extend(reversed(node))
        elif node.tail:
            parts.append(node.tail)
    return "".join(parts)


def _rows(table: etree._Element) -> list[etree._Element]:
    out = []
    for child in table:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "tr":
            out.append(child)
        elif tag in ("thead", "tbody", "tfoot"):
            out.extend(c for c in child if c.tag == "tr")
    return out


def table_grid(table: etree._Element, index: int, budget: Budget | None = None) -> Table:
    """Expand one <table> (not its nested tables) into rows of cells. Spanned positions repeat the
    spanning cell's text with copy=True so that each grid row is complete. The cells are spent from
    the page's budget (ParseFailure past it); a span wanting more copies than the budget's share for
    spans prints once, so that spans alone never use up a page's budget."""
    budget = Budget() if budget is None else budget
    # Checked once per table: most report tables hold no nested table, script or style at all.
    plain = table.find(".//table") is None and table.find(".//script") is None and table.find(".//style") is None
    trs = _rows(table)
    n_rows = len(trs)
    grid: list[dict[int, Cell]] = [{} for _ in trs]  # row -> column -> cell
    for r, tr in enumerate(trs):
        row = grid[r]
        c = 0
        budget.spend(len(tr))  # its children: at least its cells
        for td in tr:
            if td.tag not in ("td", "th"):
                continue
            while c in row:
                c += 1
            text = cell_text(td, plain)
            rowspan_attr, colspan_attr = td.get("rowspan"), td.get("colspan")
            if rowspan_attr is None and colspan_attr is None:  # the common case, kept short
                row[c] = Cell(text, r, c)
                c += 1
                continue
            rowspan = min(_span(rowspan_attr, MAX_ROWSPAN), n_rows - r)
            colspan = _span(colspan_attr, MAX_COLSPAN)
            if rowspan * colspan - 1 > budget.spans:
                rowspan = colspan = 1
            budget.spans -= rowspan * colspan - 1
            budget.spend(rowspan * colspan - 1)
            for dr in range(rowspan):
                spanned = grid[r + dr]
                for dc in range(colspan):
                    spanned[c + dc] = Cell(text, r + dr, c + dc, copy=bool(dr or dc))
            c += colspan
    rows = [[row[c] for c in sorted(row)] for row in grid]
    return Table(index=index, rows=rows, row_delimited=True)

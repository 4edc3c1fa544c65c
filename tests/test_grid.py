"""HTML tables to cell grids: spans, Word-pasted markup, nested tables, hostile spans."""

import lxml.html

from govreports.extract.grid import MAX_COLSPAN, table_grid


def _grid(html: str, index: int = 0):
    root = lxml.html.fromstring(html)
    tables = list(root.iter("table"))
    return table_grid(tables[index], index)


def texts(table):
    return [[(c.text, c.copy) for c in row] for row in table.rows]


def test_rowspan_and_colspan_expand_with_copies():
    t = _grid(
        "<table><tr><td rowspan=2>三、本年度办理结果</td><td>（一）予以公开</td><td colspan=2>5</td></tr>"
        "<tr><td>（二）部分公开</td><td>1</td><td>2</td></tr></table>"
    )
    assert texts(t) == [
        [("三、本年度办理结果", False), ("（一）予以公开", False), ("5", False), ("5", True)],
        [("三、本年度办理结果", True), ("（二）部分公开", False), ("1", False), ("2", False)],
    ]
    assert [(c.row, c.col) for c in t.rows[1]] == [(1, 0), (1, 1), (1, 2), (1, 3)]


def test_word_pasted_cell_text_is_joined_and_markup_whitespace_dropped():
    t = _grid(
        "<table class=MsoNormalTable><tr><td>\n  <p class=MsoNormal><span>申请人情</span><span>况</span>"
        "<o:p></o:p></p>\n</td><td><p><span>商业</span></p><p><span>企业</span></p></td>"
        "<td><p><span><o:p>&nbsp;</o:p></span></p></td><td>1<br>077</td></tr></table>"
    )
    assert [c.text for c in t.rows[0]] == ["申请人情况", "商业企业", "", "1077"]


def test_nested_table_text_stays_out_of_the_layout_cell():
    html = (
        "<table><tr><td>正文<table><tr><td>行政许可</td><td>7</td></tr></table>尾注</td></tr></table>"
    )
    outer, inner = _grid(html, 0), _grid(html, 1)
    assert [c.text for c in outer.rows[0]] == ["正文尾注"]
    assert [c.text for c in inner.rows[0]] == ["行政许可", "7"]


def test_thead_tbody_rows_are_read_in_order():
    t = _grid("<table><thead><tr><th>信息内容</th></tr></thead><tbody><tr><td>规章</td></tr></tbody></table>")
    assert [row[0].text for row in t.rows] == ["信息内容", "规章"]


def test_absurd_spans_are_capped():
    t = _grid('<table><tr><td colspan="100000" rowspan="-3">x</td><td colspan="abc">y</td></tr></table>')
    assert len(t.rows) == 1
    assert len(t.rows[0]) == MAX_COLSPAN + 1
    assert t.rows[0][-1].text == "y"


def test_the_budget_is_the_pages_spans_stop_expanding_and_cells_past_it_are_refused():
    """One Budget for all of a page's tables: spans make at most half of its positions (so 500 tables of
    the largest span cannot add up), and cells past it raise ParseFailure("page too large")."""
    import pytest

    from govreports.extract.cells import MAX_PAGE_CELLS, Budget, ParseFailure

    bomb = '<table><tr><td rowspan="500" colspan="64">x</td></tr>' + "<tr>" * 499 + "</table>"
    root = lxml.html.fromstring("<div>" + bomb * 50 + "</div>")
    budget = Budget()
    positions = sum(len(row) for i, el in enumerate(root.iter("table")) for row in table_grid(el, i, budget).rows)
    assert positions == MAX_PAGE_CELLS - budget.cells
    assert MAX_PAGE_CELLS // 2 - 32_000 <= positions <= MAX_PAGE_CELLS // 2 + 50 and budget.spans < 32_000
    row = lxml.html.fromstring("<table><tr>" + "<td>1</td>" * (budget.cells + 1) + "</tr></table>")
    with pytest.raises(ParseFailure) as failure:
        table_grid(row, 50, budget)
    assert failure.value.reason == "page too large" and "table cells" in failure.value.detail

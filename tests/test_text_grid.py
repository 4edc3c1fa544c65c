"""Text renderings to cell grids: the three shapes reports circulate in."""

from govreports.extract.text_grid import text_table


def cells(table):
    return [[c.text for c in row] for row in table.rows]


def test_seed_style_rows_and_wrapped_cells():
    text = "标题\n" + "\t信息内容\n\t本年新\n制作数量\n\t对外公开总数量\n\n\t规章\n\t0\n\t　　 0\n\n" * 3
    t = text_table(text)
    assert t.row_delimited
    assert cells(t)[1] == ["信息内容", "本年新\n制作数量", "对外公开总数量"]
    assert cells(t)[2] == ["规章", "0", "　　 0"]
    assert cells(t)[0] == ["标题"]


def test_pipe_rows_with_and_without_outer_pipes():
    text = "第二十条第(五)项 | ||||\n信息内容 | 本年处理决定数量 | |\n行政许可 | 15 | |\n| 行政处罚 | 2 | |\n"
    t = text_table(text)
    assert t.row_delimited
    assert cells(t)[2][:2] == ["行政许可 ", " 15 "]
    assert cells(t)[3][:2] == [" 行政处罚 ", " 2 "]
    assert [c.row for c in t.rows[3]] == [3, 3, 3]


def test_pipe_per_line_drops_colspan_fillers_and_keeps_blank_cells():
    text = "第二十條 第(五)項 |\n|||\n信息內容 |\n本年處理決定數量 |\n||\n行政許可 |\n |\n||\n行政處罰 |\n9 |\n"
    t = text_table(text)
    assert not t.row_delimited
    assert [r[0].text.strip() for r in t.rows] == [
        "第二十條 第(五)項", "信息內容", "本年處理決定數量", "行政許可", "", "行政處罰", "9"
    ]


def test_one_cell_per_line_without_marks():
    t = text_table("信息内容\n\n本年制发件数\n\n规章\n\n0\n")
    assert not t.row_delimited
    assert cells(t) == [["信息内容"], ["本年制发件数"], ["规章"], ["0"]]
    assert [r[0].row for r in t.rows] == [0, 2, 4, 6]


def test_cells_past_the_page_budget_are_refused():
    import pytest

    from govreports.extract.cells import MAX_PAGE_CELLS, ParseFailure

    assert len(text_table("a | b\n" * 3 + " | x" * (MAX_PAGE_CELLS - 10)).rows) == 4
    for text in ("a | b\n" * 3 + " | x" * MAX_PAGE_CELLS, "x\n\n" * (MAX_PAGE_CELLS + 1)):
        with pytest.raises(ParseFailure, match="page too large: more than"):
            text_table(text)

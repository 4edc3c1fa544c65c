"""Text renderings to cell grids: the shapes reports circulate in."""

import random
from pathlib import Path

import pytest

from govreports.extract.text_grid import text_table
from tests.render import WRAPPED_CELL_STYLE


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
    from govreports.extract.cells import MAX_PAGE_CELLS, ParseFailure

    assert len(text_table("a | b\n" * 3 + " | x" * (MAX_PAGE_CELLS - 10)).rows) == 4
    for text in ("a | b\n" * 3 + " | x" * MAX_PAGE_CELLS, "x\n\n" * (MAX_PAGE_CELLS + 1)):
        with pytest.raises(ParseFailure, match="page too large: more than"):
            text_table(text)


def test_cells_between_bar_lines_with_blank_cells_and_fillers():
    text = ("二、主动公开政府信息情况\n第二十条第（八）项\n||||\n信息内容\n|\n上一年项目数量\n|\n本年增/减\n||\n"
            "行政事业性收费\n|\n\n|\n5\n||\n五、存在的主要问题\n正文。\n")
    t = text_table(text)
    assert not t.row_delimited
    assert cells(t) == [["二、主动公开政府信息情况"], ["第二十条第（八）项"], ["信息内容"], ["上一年项目数量"],
                        ["本年增/减"], ["行政事业性收费"], [""], ["5"], ["五、存在的主要问题"], ["正文。"]]
    assert [r[0].row for r in t.rows][5:8] == [9, 11, 13]  # the line each cell was printed on


def test_a_header_wrapped_over_two_cells_is_one_header():
    lines = ["信息内容", "本年新", "制作数量", "现行有效", "件数", "本年", "新公开", "数量", "规章", "1", "2"]
    t = text_table("\n\n".join(lines) + "\n")
    assert cells(t) == [["信息内容"], ["本年新\n制作数量"], ["现行有效\n件数"], ["本年\n新公开\n数量"],  # three parts
                        ["规章"], ["1"], ["2"]]
    assert t.rows[1][0].row == 2  # provenance: the first fragment's line
    bars = text_table("\n|\n".join(lines) + "\n||\n")
    assert cells(bars) == cells(t)


def test_fragments_that_do_not_form_a_label_stay_as_printed():
    # 本年新 + 制造数量 is no label; 其他 is a label of its own (an applicant), never a fragment;
    # 本年新 + 制作数 is a label's prefix that the next cell does not complete.
    for lines in (["本年新", "制造数量"], ["其他", "结果"], ["本年新", "制作数", "规章"], ["商业", "1"]):
        assert cells(text_table("\n\n".join(lines) + "\n")) == [[line] for line in lines]


def _round_trip(style: str, seed: int, template: str) -> None:
    from tests.render import random_spec, render
    from tests.test_property import assert_round_trip

    spec = random_spec(random.Random(f"{style}-{template}-{seed}"), template=template,
                       empty_cells=style != WRAPPED_CELL_STYLE)
    assert_round_trip(spec, render(spec, style))


@pytest.mark.parametrize("template", ["2019", "2021"])
@pytest.mark.parametrize("style", ["text_bar_per_line", WRAPPED_CELL_STYLE])
def test_new_text_shapes_parse_to_exactly_the_printed_cells(style: str, template: str) -> None:
    for seed in range(8):
        _round_trip(style, seed, template)


def test_a_near_miss_header_leaves_its_block_unparsed_not_shifted():
    from govreports.flows.parse import parse_report
    from tests.render import expected, random_spec, render

    spec = random_spec(random.Random("near-miss"), template="2019", empty_cells=False)
    page = render(spec, WRAPPED_CELL_STYLE).decode()
    assert "本年新\n\n制作数量" in page
    facts = parse_report(page.replace("本年新\n\n制作数量", "本年新\n\n制造数量").encode()).facts
    block1 = facts[facts["row_label"].isin(["规章", "规 章", "规范性文件"])]
    assert len(block1) == 6 and set(block1["value_status"]) == {"unparsed"}  # 2 rows of 3 values
    assert set(block1["raw"]) <= {spec.cells[k] for k in spec.cells}
    rest = facts[~facts.index.isin(block1.index)]
    want = expected(spec)
    for metric, applicant, status in zip(rest["metric"], rest["applicant"], rest["value_status"], strict=True):
        assert (metric, "" if not isinstance(applicant, str) else applicant) in want
        assert status != "unparsed"
    assert len(rest) == len(want) - 6


# data/sample_pages/<file>: (style, seed, template, year, agency), written by tests/render.py (balanced_spec,
# so that the sample-page tests find its identities hold)
SAMPLES = {
    "bar-per-line-2019.txt": ("text_bar_per_line", "sample-bar-per-line-10", "2019", 2019, "青岚县水利局"),
    "cell-per-line-wrapped-2020.txt": (WRAPPED_CELL_STYLE, "sample-cell-per-line-wrapped", "2019", 2020,
                                       "石桥区自然资源局"),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_pages_of_the_new_shapes(name: str) -> None:
    from tests.render import balanced_spec, render
    from tests.test_property import assert_round_trip

    style, seed, template, year, agency = SAMPLES[name]
    spec = balanced_spec(random.Random(seed), template, year, agency, empty_cells=style != WRAPPED_CELL_STYLE)
    data = (Path(__file__).resolve().parents[1] / "data" / "sample_pages" / name).read_bytes()
    assert data == render(spec, style)  # the sample is the renderer's, so it can be rewritten
    assert_round_trip(spec, data)

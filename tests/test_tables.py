"""Recognising values in cell grids: blocks, templates, rows, and what the reader refuses to guess."""

from govreports.extract.cells import Cell, Table
from govreports.extract.text_grid import text_table
from govreports.transform.tables import recognise


def grid(rows, index=0, delimited=True):
    return Table(index, [[Cell(t, r, c) for c, t in enumerate(row)] for r, row in enumerate(rows)], delimited)


def values(rec):
    return {(v.metric, v.applicant): (v.parsed.status, v.parsed.value) for v in rec.values if v.metric}


APPLICANTS = ["自然人", "商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他", "总计"]
HEADER3 = [["（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）", "申请人情况"],
           ["自然人", "法人或其他组织", "总计"], ["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]]


def test_template_is_read_per_block_and_a_split_table_reads_as_one():
    first = grid([["第二十条第（一）项"], ["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"],
                  ["规章", "0", "1", "2"], ["行政规范性文件", "3", "4", "5"]], index=1)
    # The 2019 columns in one block, the 2021 ones in another: both occur in real reports.
    second = grid([["第二十条第（五）项"], ["信息内容", "上一年项目数量", "本年增/减", "处理决定数量"],
                   ["行政许可", "100", "减6", "94"]], index=2)
    rec = recognise([first, second])
    v = values(rec)
    assert v[("normative_docs_in_force", None)] == ("number", 5.0)
    assert v[("licensing_items_change", None)] == ("number", -6.0)
    assert v[("licensing_decisions", None)] == ("number", 94.0)
    templates = {v.metric: v.template for v in rec.values}
    assert templates["regulations_issued"] == "2021"
    assert templates["licensing_decisions"] == "2019"
    assert {v.table for v in rec.values} == {1, 2}


def test_ambiguous_header_words_fall_back_to_position():
    rec = recognise([grid([["第二十条第（一）项"], ["信息内容", "本年新", "本年新", "对外公开总数量"],
                           ["规章", "1", "2", "3"]])])
    v = values(rec)
    assert v[("regulations_new_made", None)] == ("number", 1.0)
    assert v[("regulations_new_published", None)] == ("number", 2.0)
    assert v[("regulations_total_published", None)] == ("number", 3.0)


def test_extra_agency_row_is_kept_without_a_metric():
    rec = recognise([grid([["第二十条第（一）项"], ["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"],
                           ["规章", "0", "0", "0"], ["其他主动公开文件", "12", "0", "40"]])])
    extra = [v for v in rec.values if v.metric is None]
    assert [(v.row_label, v.column_label, v.parsed.value) for v in extra] == [
        ("其他主动公开文件", "本年制发件数", 12.0), ("其他主动公开文件", "本年废止件数", 0.0),
        ("其他主动公开文件", "现行有效件数", 40.0)]


def test_section3_paths_subtotals_and_2021_other_handling():
    rows = [*HEADER3,
            ["一、本年新收政府信息公开申请数量", *"1234567"],
            ["三、本年度办理结果", "（三）不予公开", *"0000009"],
            ["三、本年度办理结果", "（三）不予公开", "1.属于国家秘密", *"0000009"],
            ["三、本年度办理结果", "（六）其他处理", "3.其他", *"0000001"],
            ["三、本年度办理结果", "（七）总计", *"1111111"]]
    rec = recognise([grid(rows)])
    by_key = {(v.metric, v.applicant): v for v in rec.values}
    assert by_key[("requests_new", "法律服务机构")].parsed.value == 5.0
    assert by_key[("outcome_withheld", "总计")].row_label == "本年度办理结果/不予公开"
    assert by_key[("outcome_withheld_state_secret", "总计")].parsed.value == 9.0
    assert by_key[("outcome_other_other", "总计")].row_label == "本年度办理结果/其他处理/其他"
    assert by_key[("outcome_total", "自然人")].parsed.value == 1.0
    assert rec.template == "2021"


def test_section4_one_row_of_fifteen():
    rows = [["行政复议", "行政诉讼"],
            ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计", "未经复议直接起诉", "复议后起诉"],
            ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"] * 2, [str(i) for i in range(15)]]
    v = values(recognise([grid(rows)]))
    assert v[("review_upheld", None)] == ("number", 0.0)
    assert v[("suit_direct_total", None)] == ("number", 9.0)
    assert v[("suit_after_review_total", None)] == ("number", 14.0)


def test_cell_per_line_row_cut_short_is_flagged_not_guessed():
    text = "\n\n".join(["第二十条第（五）项", "信息内容", "上一年项目数量", "本年增/减", "处理决定数量",
                        "行政许可", "7", "2", "第二十条第（六）项"]) + "\n"
    rec = recognise([text_table(text)])
    licensing = [v for v in rec.values if v.metric and v.metric.startswith("licensing")]
    assert [v.parsed.status for v in licensing] == ["unparsed", "unparsed"]
    assert [v.parsed.raw for v in licensing] == ["7", "2"]
    assert any("行政许可" in p for p in rec.problems)


def test_blank_and_not_given_stay_distinct_from_zero():
    rows = [*HEADER3, ["一、本年新收政府信息公开申请数量", "3", "", "/", "—", "无", "0", "3"]]
    rec = recognise([grid(rows)])
    statuses = [v.parsed.status for v in rec.values]
    assert statuses == ["number", "blank", "na", "na", "na", "number", "number"]
    assert [v.parsed.value for v in rec.values][1:5] == [None] * 4


def test_truncated_text_says_so_and_keeps_complete_rows():
    text = "\n".join(["\t" + c for c in ["第二十条第（五）项"]] + ["", "\t信息内容", "\t本年处理决定数量", "",
                                                              "\t行政许可", "\t15", "", "\t行政处罚", ""] * 2)
    rec = recognise([text_table(text)])
    assert rec.truncated
    assert values(rec)[("licensing_decisions", None)] == ("number", 15.0)


def test_section4_grid_row_with_a_blank_first_cell_keeps_positions():
    rows = [["行政复议", "行政诉讼"],
            ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计", "未经复议直接起诉", "复议后起诉"],
            ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"] * 2, ["", *[str(i) for i in range(1, 15)]]]
    v = values(recognise([grid(rows)]))
    assert v[("review_upheld", None)] == ("blank", None)
    assert v[("review_corrected", None)] == ("number", 1.0)
    assert v[("suit_after_review_total", None)] == ("number", 14.0)


def test_subtotal_row_under_a_spanning_group_label_with_an_empty_item_cell():
    rows = [*HEADER3,
            ["三、本年度办理结果", "（三）不予公开", "", *"0000009"],
            ["三、本年度办理结果", "（三）不予公开", "1.属于国家秘密", *"0000009"]]
    t = grid(rows)
    for r in (len(HEADER3), len(HEADER3) + 1):  # the group cells are spans of the first row's cells
        t.rows[r][0].copy = r != len(HEADER3)
        t.rows[r][1].copy = r != len(HEADER3)
    v = values(recognise([t]))
    assert v[("outcome_withheld", "自然人")] == ("number", 0.0)
    assert v[("outcome_withheld", "总计")] == ("number", 9.0)
    assert v[("outcome_withheld_state_secret", "总计")] == ("number", 9.0)


def test_pipe_row_with_trailing_fillers_reads_the_values_not_the_fillers():
    text = "\n".join([*(" | ".join(r) for r in HEADER3),
                      "一、本年新收政府信息公开申请数量 | 1 | 2 | 3 | 4 | 5 | 6 | 21 | | |"] * 1 + ["x | y"] * 2)
    v = values(recognise([text_table(text)]))
    assert v[("requests_new", "总计")] == ("number", 21.0)
    assert v[("requests_new", "自然人")] == ("number", 1.0)

"""Label normalisation: printed variants must meet the dictionary's labels."""

import pytest

from govreports.transform.labels import caption_block, label_key
from govreports.transform.tables import HEADING, LABEL, UNKNOWN, VALUE, classify


@pytest.mark.parametrize(
    ("printed", "official"),
    [
        ("规 章", "规章"),
        ("规\u3000章", "规章"),
        ("行政\xa0许可", "行政许可"),
        ("(一)予以公开", "予以公开"),
        ("（一）予以公开", "予以公开"),
        ("1．属于国家秘密", "属于国家秘密"),
        ("处理决定数量（指2020年办件量）", "处理决定数量"),
        ("本年收费金额(单位:万元)", "本年收费金额"),
        ("本年增/减", "本年增减"),
        ("危及\"三安全一稳定\"", "危及三安全一稳定"),
        ("行政規範性檔案", "行政规范性文件"),
        ("二、上年转结政府信息公开申请数量", "上年结转政府信息公开申请数量"),
        ("（二）部分公开（区分处理的，只计这一情形，不计其他情形）", "部分公开"),
        ("本年新\n制作数量", "本年新制作数量"),
    ],
)
def test_label_key_matches_official(printed, official):
    assert label_key(printed) == label_key(official)


@pytest.mark.parametrize(
    ("caption", "block"),
    [("第二十条第（一）项", "1"), ("第二十条 第(五)项", "5"), ("第二十一条第（六）项", "6"),
     ("第二十條第（八）項", "8"), ("第二十条第（九）项", "9"), ("第二十条规定", None), ("行政许可", None)],
)
def test_caption_block(caption, block):
    assert caption_block(caption) == block


def test_classify_kinds():
    assert classify("16363")[0] == VALUE
    assert classify("—")[0] == VALUE
    assert classify("三、收到和处理政府信息公开申请情况")[0] == HEADING
    assert classify("現行有效件")[0] == LABEL  # truncated and traditional
    assert classify("本年新")[0] == UNKNOWN  # too short to tell 本年新制作数量 from 本年新公开数量
    assert classify("其他主动公开文件")[0] == UNKNOWN
    kinds = {h.kind for h in classify("总计")[1]}
    assert kinds == {"row3", "applicant", "result4"}

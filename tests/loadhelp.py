"""Small reports for load tests: a pipe-rows text page per (agency, year, template, decisions)."""

from __future__ import annotations

import hashlib

import pandas as pd

from govreports.extract.sources import Source
from govreports.flows.steps import PageRef, parse_page
from govreports.load.lake import ReportBundle


def page(agency: str, year: int, template: str, licensing: int, penalty: int, requests_new: int = 3,
         carried_forward: int = 1, regulations: tuple[int, int, int] | None = None,
         review: tuple[int, ...] | None = None) -> bytes:
    """`regulations`: (本年制发件数, 本年废止件数, 现行有效件数) of 规章, a block (一) of the 2021 template.
    `review`: the fifteen values of section 四 (行政复议, 未经复议直接起诉, 复议后起诉; 结果维持 … 总计 each)."""
    if template == "2019":
        block5 = ["第二十条第（五）项 | | | |", "信息内容 | 上一年项目数量 | 本年增/减 | 处理决定数量 |",
                  f"行政许可 | 40 | 减2 | {licensing} |", "其他对外管理服务事项 | 0 | 0 | 0 |",
                  "第二十条第（六）项 | | | |", "信息内容 | 上一年项目数量 | 本年增/减 | 处理决定数量 |",
                  f"行政处罚 | 9 | 1 | {penalty} |", "行政强制 | 0 | 0 | 0 |"]
    else:
        block1 = [] if regulations is None else [
            "第二十条第（一）项 | | | |", "信息内容 | 本年制发件数 | 本年废止件数 | 现行有效件数 |",
            "规章 | " + " | ".join(map(str, regulations)) + " |"]
        block5 = [*block1, "第二十条第（五）项 | |", "信息内容 | 本年处理决定数量 |", f"行政许可 | {licensing} |",
                  "第二十条第（六）项 | |", "信息内容 | 本年处理决定数量 |", f"行政处罚 | {penalty} |",
                  "行政强制 | 0 |"]
    n = requests_new
    section3 = ["三、收到和处理政府信息公开申请情况",
                "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和） | 申请人情况 |",
                "自然人 | 法人或其他组织 | 总计 |", "商业企业 | 科研机构 | 社会公益组织 | 法律服务机构 | 其他 |",
                f"一、本年新收政府信息公开申请数量 | {n} | 0 | 0 | 0 | 0 | 0 | {n} |",
                "二、上年结转政府信息公开申请数量 | 1 | 0 | 0 | 0 | 0 | 0 | 1 |",
                f"三、本年度办理结果 | （一）予以公开 | {n} | 0 | 0 | 0 | 0 | 0 | {n} |",
                "（七）总计 | " + " | ".join([str(n), "0", "0", "0", "0", "0", str(n)]) + " |",
                f"四、结转下年度继续办理 | {carried_forward} | 0 | 0 | 0 | 0 | 0 | {carried_forward} |"]
    results = "结果维持 | 结果纠正 | 其他结果 | 尚未审结 | 总计"
    section4 = [] if review is None else [
        "四、政府信息公开行政复议、行政诉讼情况", "行政复议 | 行政诉讼 |",
        f"{results} | 未经复议直接起诉 | 复议后起诉 |", f"{results} | {results} |",
        " | ".join(map(str, review)) + " |"]
    lines = [f"{agency}{year}年政府信息公开工作年度报告", "一、总体情况", "本机关按要求做好公开工作。",
             "二、主动公开政府信息情况", *block5, *section3, *section4, "五、存在的主要问题及改进情况", "继续改进。"]
    return "\n".join(lines).encode("utf-8")


def bundle(agency_id: str, agency: str, year: int, template: str, licensing: int, penalty: int,
           region: str = "浙江省/宁波市/鄞州区", fetched_at: str = "2024-01-01", requests_new: int = 3,
           carried_forward: int = 1, regulations: tuple[int, int, int] | None = None,
           review: tuple[int, ...] | None = None) -> ReportBundle:
    data = page(agency, year, template, licensing, penalty, requests_new, carried_forward, regulations, review)
    # The pipeline's own parse stage builds the reports row, as in a real run.
    province, city, county = [*region.split("/"), "", "", ""][:3]
    source = Source(agency_id, agency, province, city, county, "", "county", "department", (), (), ("127.0.0.1",))
    ref = PageRef(agency_id, f"http://127.0.0.1/{agency_id}/{year}.html", hashlib.sha256(data).hexdigest(), None,
                  pd.Timestamp(fetched_at, tz="UTC"))
    return parse_page(data, ref, source, pd.Timestamp.now(tz="UTC"))

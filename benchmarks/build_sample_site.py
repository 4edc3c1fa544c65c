"""Build data/sample_site/: the bundled demo site that `govreports demo-site` serves.

    .venv/bin/python -m benchmarks.build_sample_site [OUT_DIR]

Seven real agencies (names real, numbers made up, except the seed report: 鄞州区交通运输局 2020 carries its
published numbers), 2019–2024 each, in both templates and several markup styles, one site in GBK without a
charset declaration, one paginated listing, reports published only as a PDF, a DOCX, a scanned PDF and as a page
linking its .doc, a notice that is not a report and a link to another host. Deterministic: the same code writes
the same bytes (the .doc, which LibreOffice does not write byte-stably, is kept from the previous build).
"""

from __future__ import annotations

import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.sites import (
    SiteAgency,
    SiteLink,
    SiteReport,
    build_site,
    consistent_spec,
    requests_cells,
    write_registry,
)
from tests.render import ReportSpec, template_cells

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "data" / "sample_site"
SEED = 20200101
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)


def _agency(agency_id: str, name: str, province: str, city: str, county: str, *, gbk: bool = False,
            page_size: int = 20) -> SiteAgency:
    return SiteAgency(agency_id, name, province, city, county, "", "county", "department",
                      f"/{agency_id}/ndbg/index.html", gbk, page_size)


AGENCIES = (
    _agency("330212-jtj", "鄞州区交通运输局", "浙江省", "宁波市", "鄞州区", page_size=2),  # paginated
    _agency("330203-jtj", "海曙区交通运输局", "浙江省", "宁波市", "海曙区"),
    _agency("330205-jtj", "江北区交通运输局", "浙江省", "宁波市", "江北区"),
    _agency("330206-jtj", "北仑区交通运输局", "浙江省", "宁波市", "北仑区", gbk=True),  # GBK, no charset
    _agency("330211-jtj", "镇海区交通运输局", "浙江省", "宁波市", "镇海区"),
    _agency("321322-fgj", "沭阳县发展和改革局", "江苏省", "宿迁市", "沭阳县"),
    _agency("321323-fgj", "泗阳县发展和改革局", "江苏省", "宿迁市", "泗阳县"),
)


@dataclass(frozen=True)
class Story:
    """One unit's numbers: decisions per year 2019–2024 (and the year before, for 2019's 上一年项目数量),
    requests received per year, and how it prints."""

    licensing: tuple[int, ...]  # 2018, 2019, …, 2024
    penalty: tuple[int, ...]  # 2018, 2019, …, 2024
    coercion: tuple[int, ...]  # 2019, …, 2024
    received: tuple[int, ...]  # 2019, …, 2024
    styles: tuple[tuple[str, int], ...]  # (style, chrome_kb) per year 2019, …, 2024
    change_form: str = "cn"
    thousands: bool = False


STORIES = {
    # Falling steadily; 2019's 23285 and 3814 are the seed's 上一年项目数量, 2020 is the seed itself.
    "330212-jtj": Story(licensing=(26120, 23285, 16363, 14120, 12480, 10950, 9620),
                        penalty=(4102, 3814, 1077, 1190, 1345, 1420, 1502),
                        coercion=(3, 0, 2, 1, 0, 1), received=(4, 0, 6, 5, 9, 7),
                        styles=(("html_cms", 4), ("html_cms", 8), ("html_word", 2), ("html_cms", 4),
                                ("html_cms", 6), ("html_plain", 0))),
    # Rising; its 2020 report is printed in the 2021 template.
    "330203-jtj": Story(licensing=(4870, 5120, 5680, 6340, 7150, 7920, 8860),
                        penalty=(1490, 1450, 1380, 1210, 1105, 980, 900),
                        coercion=(12, 10, 9, 11, 8, 6), received=(7, 9, 12, 10, 14, 11),
                        styles=(("html_plain", 2), ("html_plain", 2), ("html_plain", 4), ("html_plain", 0),
                                ("html_plain", 3), ("html_cms", 3)),
                        change_form="sign"),
    # Falling, while penalties rise.
    "330205-jtj": Story(licensing=(8800, 8450, 7930, 7010, 6240, 5380, 4710),
                        penalty=(590, 620, 655, 700, 810, 905, 980),
                        coercion=(4, 5, 7, 6, 9, 8), received=(3, 5, 4, 8, 6, 10),
                        styles=(("html_cms", 0), ("html_cms", 2), ("html_cms", 5), ("html_cms", 8),
                                ("html_word", 0), ("html_cms", 3))),
    # Flat-ish; the GBK site.
    "330206-jtj": Story(licensing=(9950, 9870, 10040, 9760, 9930, 10110, 9890),
                        penalty=(2310, 2200, 2050, 1760, 1500, 1320, 1150),
                        coercion=(20, 18, 15, 17, 14, 12), received=(6, 8, 7, 9, 8, 12),
                        styles=(("html_gbk", 0), ("html_gbk", 2), ("html_gbk", 4), ("html_gbk", 6),
                                ("html_gbk", 8), ("html_gbk", 3)),
                        thousands=True),
    # Rising.
    "330211-jtj": Story(licensing=(3050, 3260, 3510, 3990, 4420, 4960, 5530),
                        penalty=(402, 410, 395, 430, 415, 400, 420),
                        coercion=(2, 3, 1, 2, 2, 3), received=(2, 3, 5, 4, 6, 5),
                        styles=(("html_word", 0), ("html_plain", 0), ("html_plain", 4), ("html_pre_pipe", 0),
                                ("html_cms", 2), ("html_plain", 2)),
                        change_form="plain"),
    # 宿迁市: one up …
    "321322-fgj": Story(licensing=(1100, 1240, 1385, 1510, 1720, 1960, 2215),
                        penalty=(141, 150, 162, 171, 188, 176, 190),
                        coercion=(0, 0, 1, 0, 0, 1), received=(5, 8, 6, 11, 9, 13),
                        styles=(("html_cms", 2), ("html_word", 0), ("html_cms", 4), ("html_cms", 0),
                                ("html_cms", 6), ("html_cms", 2))),
    # … one down; its 2019 report is only a PDF, its 2021 one only a DOCX, its 2023 one a page linking a
    # .doc, and its 2024 one only a scanned PDF.
    "321323-fgj": Story(licensing=(1050, 980, 910, 835, 760, 690, 610),
                        penalty=(80, 88, 95, 120, 146, 165, 190),
                        coercion=(0, 1, 0, 2, 1, 0), received=(2, 4, 3, 6, 5, 4),
                        styles=(("pdf", 0), ("html_plain", 0), ("docx", 0), ("html_cms", 0),
                                ("doc_page", 0), ("scan", 0))),
}
FILE_EXTENSIONS = {"pdf": "pdf", "docx": "docx", "scan": "pdf"}  # styles published only as a file
TEMPLATE_2021_IN_2020 = "330203-jtj"
SEED_AGENCY, SEED_YEAR = "330212-jtj", 2020
SEED_NOTE = ("the seed: 鄞州区交通运输局's published 2020 numbers; identity 1 fails for 商业企业 and 总计 "
             "(one request carried over, none handled or carried forward), as in the original")


def seed_spec() -> ReportSpec:
    """鄞州区交通运输局 2020 (2019 template), with the numbers of data/sample_pages/seed-yinzhou-transport-2020.txt."""
    cells = {key: "0" for key, _ in template_cells("2019")}
    cells.update({
        ("licensing_items_prev_year", ""): "23285", ("licensing_items_change", ""): "减6922",
        ("licensing_decisions", ""): "16363",
        ("penalty_items_prev_year", ""): "3814", ("penalty_items_change", ""): "减2737",
        ("penalty_decisions", ""): "1077",
        ("procurement_projects", ""): "5个", ("procurement_amount_wan_yuan", ""): "210万",
        ("requests_carried_over", "business"): "1", ("requests_carried_over", "total"): "1",
    })
    return ReportSpec(agency="鄞州区交通运输局", year=2020, template="2019", cells=cells)


def _yinzhou_2019(spec: ReportSpec) -> ReportSpec:
    """鄞州区 2019 carries forward the one business request the seed says was carried over into 2020."""
    cells, forward = requests_cells("2019", new={"natural_person": 3, "business": 1}, carried_over={},
                                    outcomes={"outcome_disclosed": {"natural_person": 2},
                                              "outcome_unavailable_not_held": {"natural_person": 1}})
    assert forward == {"natural_person": 0, "business": 1, "research": 0, "public_interest": 0,
                       "legal_services": 0, "other_org": 0}
    return ReportSpec(spec.agency, spec.year, spec.template, {**spec.cells, **cells})


def reports(rng: random.Random) -> list[SiteReport]:
    out: list[SiteReport] = []
    serial = 3_000_000
    for agency in AGENCIES:
        story = STORIES[agency.agency_id]
        carried: dict[str, int] = {}
        for i, year in enumerate(YEARS):
            style, chrome_kb = story.styles[i]
            template = "2019" if year <= 2020 else "2021"
            if year == 2020 and agency.agency_id == TEMPLATE_2021_IN_2020:
                template = "2021"
            note = ""
            if (agency.agency_id, year) == (SEED_AGENCY, SEED_YEAR):
                spec, carried, note = seed_spec(), {}, SEED_NOTE
            else:
                spec, carried = consistent_spec(
                    rng, agency.name, year, template,
                    licensing=story.licensing[i + 1], penalty=story.penalty[i + 1], coercion=story.coercion[i],
                    prev={"licensing": story.licensing[i], "penalty": story.penalty[i],
                          "coercion": story.coercion[i - 1] if i else story.coercion[0]},
                    received=story.received[i], carried_over=carried, keep=rng.choice((0, 0, 1, 2)),
                    reviews=rng.choice((0, 0, 0, 1)), suits=rng.choice((0, 0, 0, 1, 2)),
                    change_form=story.change_form, thousands=story.thousands and rng.random() < 0.6,
                )
                if (agency.agency_id, year) == (SEED_AGENCY, 2019):
                    spec = _yinzhou_2019(spec)
            serial += rng.randint(1_000, 90_000)
            # Published in January (sometimes February) of the next year; CMS pages show it in their metadata box.
            y, m, d = year + 1, rng.choice((1, 1, 1, 2)), rng.randint(8, 28)
            published = f"{y:04d}-{m:02d}-{d:02d}"
            folder = f"/{agency.agency_id}/ndbg/{y:04d}{m:02d}/"
            ext = FILE_EXTENSIONS.get(style)
            name = f"P0{y:04d}{m:02d}{d:02d}{serial}.{ext}" if ext else f"t{y:04d}{m:02d}{d:02d}_{serial}.html"
            out.append(SiteReport(agency.agency_id, year, spec, style, folder + name, chrome_kb=chrome_kb,
                                  published=published, note=note))
    return out


NOTICE_TITLE = "关于做好2023年度政府信息公开工作年度报告编制工作的通知"


def _notice_page() -> bytes:
    body = (
        "各科室、直属各单位：\n根据《中华人民共和国政府信息公开条例》和国务院办公厅政府信息与政务公开办公室的有关要求，"
        "现就做好2023年度政府信息公开工作年度报告编制和发布工作通知如下：\n"
        "一、各单位应按照统一格式编制年度报告，数据应与办理台账一致。\n"
        "二、年度报告应于2024年1月31日前在本单位网站政府信息公开专栏发布。\n"
        "三、发布前请做好保密审查和数据核对。\n（示例数据：本页为示例站点中的一则通知，不是年度报告。）"
    )
    paras = "".join(f"<p>{line}</p>\n" for line in body.split("\n"))
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{NOTICE_TITLE}</title>\n</head>\n'
            f'<body>\n<div class="article">\n<h1>{NOTICE_TITLE}</h1>\n{paras}<p>江北区交通运输局</p>\n'
            "<p>2023年12月5日</p>\n</div>\n</body>\n</html>\n").encode()


EXTRAS = (
    SiteLink("330205-jtj", NOTICE_TITLE, "/330205-jtj/tzgg/202312/t20231205_3871220.html", "2023-12-05",
             kind="notice", body=_notice_page()),
    SiteLink("330211-jtj", "宁波市人民政府2021年政府信息公开工作年度报告",
             "http://www.example.gov.cn/art/2022/1/25/art_1229_5843211.html", "2022-01-25", kind="external"),
)
TRUNCATE_TITLES = {"330205-jtj": 18}  # link texts cut with "…"; the full title is in the title attribute

FILE_LABELS = {"pdf": " (PDF)", "docx": " (DOCX)", "doc_page": " (DOC)", "scan": "(scan)"}

REGISTRY_COMMENT = """The demo registry: the agencies of the bundled demo site (data/sample_site/, sample data).
{site} stands for the demo site's base URL, e.g. http://127.0.0.1:8000 (govreports demo-site prints it);
substitute it before loading. Hosts: 127.0.0.1, so serve the site on 127.0.0.1 (not localhost)."""


def _readme(site_reports: list[SiteReport]) -> str:
    names = {a.agency_id: a.name for a in AGENCIES}
    by_key = {(r.agency_id, r.year): r for r in site_reports}
    head = "| unit | " + " | ".join(str(y) for y in YEARS) + " |\n|---|" + "---:|" * len(YEARS) + "\n"

    def table(metric: str) -> str:
        rows = []
        for agency in AGENCIES:
            cells = []
            for year in YEARS:
                r = by_key[(agency.agency_id, year)]
                label = FILE_LABELS.get(r.style, "")
                if r.style == "scan":
                    cells.append(label)
                    continue
                value = r.spec.cells[(metric, "")]
                cells.append(value + (" ‡" if r.spec.template == "2021" and year == 2020 else "") + label)
            rows.append(f"| {names[agency.agency_id]} ({agency.agency_id}) | " + " | ".join(cells) + " |")
        return head + "\n".join(rows) + "\n"

    styles = []
    for agency in AGENCIES:
        per_year = ", ".join(f"{r.year} {r.style}" + (f"+{r.chrome_kb}KB" if r.chrome_kb else "")
                             for r in site_reports if r.agency_id == agency.agency_id)
        styles.append(f"- {names[agency.agency_id]}: {per_year}")
    return f"""# The bundled demo site (sample data)

**This is sample data.** The agency names are real; the numbers are made up for the demo and the tests,
except one report: 鄞州区交通运输局's 2020 report carries its real published numbers (the seed,
`data/sample_pages/seed-yinzhou-transport-2020.txt`). Do not cite any other number here as an agency's.

Generated by `.venv/bin/python -m benchmarks.build_sample_site` (deterministic; do not edit by hand) and
served by `govreports demo-site [--port N]` on 127.0.0.1.

## What is here

| path | what |
|---|---|
| `index.html` | a portal page linking every agency's annual-report column |
| `<agency_id>/index.html` | the agency's home page |
| `<agency_id>/ndbg/index.html` (`index_1.html` …) | its 政府信息公开年报 listing, newest first |
| `<agency_id>/ndbg/YYYYMM/tYYYYMMDD_N.html` | a report page (`….doc` beside one: the report it links) |
| `<agency_id>/ndbg/YYYYMM/P0….pdf`, `P0….docx` | a report published only as a file, linked from the listing |
| `330205-jtj/tzgg/…` | a notice about reports (关于做好…的通知), linked from 江北区's listing: not a report |
| `robots.txt`, `common/` | robots rules (only `/search/` is disallowed), the listing pages' CSS and pagination script |
| `sources.csv` | the demo registry (`{{site}}` stands for the base URL the server prints; hosts `127.0.0.1`) |
| `manifest.json` | what each report holds: agency, year, path (and `file`, the .doc a page links), kind, \
template, style, and every value as a correct parse gives it (`"metric\\|applicant": [value_status, value]`; \
none for the scan) |

Features a scraper must cope with:

- 鄞州区交通运输局's listing is paginated, two links a page (`index.html`, `index_1.html`, `index_2.html`), with
  下一页/尾页 links and a TRS `createPageHTML(3, 0, "index", "html")` call.
- 北仑区交通运输局's site is GBK with no charset anywhere: not in the HTTP header (the server sends a bare
  `text/html`), not in the pages (listing and reports).
- 泗阳县发展和改革局 publishes some reports only as files: 2019 only as a PDF, 2021 only as a DOCX, 2023 as a
  page without tables that links its .doc (Word 97, made by LibreOffice), and 2024 only as a scanned PDF (an
  image, no text: coverage `image_only`). The PDF, DOCX and DOC print the same tables as the pages do.
- 江北区交通运输局's listing cuts link texts with "…" (the full title is in the `title` attribute) and links a
  notice (关于做好2023年度政府信息公开工作年度报告编制工作的通知) that is not a report.
- 镇海区交通运输局's listing links a report on another host (`http://www.example.gov.cn/…`), which discovery
  must ignore; its 2022 report draws its tables as text inside a `<pre>`.
- 海曙区交通运输局's 2020 report is printed in the 2021 template (‡ below), as happens in reality.
- Report pages come as plain HTML, Word-pasted HTML and CMS pages with chrome and a metadata box
  (发布机构, 发布日期). Sections 三 and 四 add up in every report except the seed, which fails identity 1 as
  the original does.

## The numbers' story

行政许可 decisions (2019–2020: 处理决定数量; 2021 on: 本年处理决定数量), as printed:

{table("licensing_decisions")}
Falling steadily in 鄞州区 and 江北区, rising in 海曙区 and 镇海区, flat in 北仑区; in 宿迁市 沭阳县 rises and
泗阳县 falls.

行政处罚 decisions:

{table("penalty_decisions")}
Styles per report:

{chr(10).join(styles)}
"""


def build(out_dir: Path = OUT_DIR) -> dict:
    rng = random.Random(SEED)
    site_reports = reports(rng)
    # LibreOffice's .doc bytes differ from run to run: keep the ones a previous build wrote.
    kept = {r.file: (out_dir / r.file.lstrip("/")).read_bytes() for r in site_reports
            if r.file and (out_dir / r.file.lstrip("/")).is_file()}
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    seed = next(r for r in site_reports if (r.agency_id, r.year) == (SEED_AGENCY, SEED_YEAR))
    manifest = build_site(
        out_dir, AGENCIES, site_reports, extras=EXTRAS, truncate_titles=TRUNCATE_TITLES,
        manifest_extra={
            "generated_by": "python -m benchmarks.build_sample_site",
            "sample_data": "Agency names are real; numbers are made up, except the seed report "
                           "(鄞州区交通运输局 2020), which carries its real published numbers.",
            "seed_report": seed.path,
            "sources": "sources.csv",
        },
        kept=kept,
    )
    write_registry(out_dir / "sources.csv", AGENCIES, comment=REGISTRY_COMMENT)
    (out_dir / "README.md").write_text(_readme(site_reports), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else OUT_DIR
    manifest = build(out_dir)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    print(f"{out_dir}: {len(manifest['agencies'])} agencies, {len(manifest['reports'])} reports, "
          f"{size / 1024:.0f} KB")


if __name__ == "__main__":
    main()

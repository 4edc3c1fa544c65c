"""`govreports compare`: a measure's yearly values per agency, largest declines first, how many agencies of
the region have no readable report each year (`missing`), and a chart.

The measures are fixed SQL; every option reaches the database as a bound parameter, never as text. --region
follows the registry's rule (extract.sources.region_matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from govreports.extract.sources import region_matches


@dataclass(frozen=True, slots=True)
class Measure:
    label: str  # for titles and axes
    sql: str  # yields agency_id, agency, region, parent_region, year, value; parameters bound by compare()


_DECISIONS = """
    SELECT agency_id, agency, region, parent_region, year, decisions AS value
    FROM decisions_trend WHERE metric = ?
"""
MEASURES: dict[str, tuple[Measure, tuple]] = {
    "licensing": (Measure("行政许可 处理决定数量 (licensing decisions)", _DECISIONS), ("licensing_decisions",)),
    "penalties": (Measure("行政处罚 处理决定数量 (penalty decisions)", _DECISIONS), ("penalty_decisions",)),
    "requests": (
        Measure(
            "本年新收政府信息公开申请数量 (applications received)",
            """
            SELECT q.agency_id, q.agency, r.region, r.parent_region, q.year, q.received AS value
            FROM requests q JOIN reports r USING (report_id) WHERE q.applicant = '总计'
            """,
        ),
        (),
    ),
}


class NoMatch(LookupError):
    """A region or year filter, or a measure, that selects nothing: a user error, said in one line."""


def regions(con: duckdb.DuckDBPyConnection, region: str) -> list[str]:
    """The region paths of the warehouse (registry and reports) that `region` matches, by the registry's rule
    (extract.sources.region_matches), so that `compare --region` selects what `fetch --region` does."""
    paths = con.execute("SELECT region FROM coverage UNION SELECT region FROM reports").fetchall()
    return sorted(p for (p,) in paths if p and region_matches(p, region))


def _where(con: duckdb.DuckDBPyConnection, region: str | None, years: tuple[int, int] | None) -> tuple[str, list]:
    """The region and year filter of compare() and missing(), as SQL with bound parameters: the matching
    region paths are picked in Python and bound as a list. A region that matches no agency raises NoMatch."""
    sql, args = "", []
    if region is not None and region.strip().strip("/").strip():
        paths = regions(con, region)
        if not paths:
            raise NoMatch(f"no agency in region {region!r}")
        sql += " AND list_contains(?::VARCHAR[], region)"
        args.append(paths)
    if years:
        sql += " AND year BETWEEN ? AND ?"
        args += [years[0], years[1]]
    return sql, args


def missing(con: duckdb.DuckDBPyConnection, region: str | None = None,
            years: tuple[int, int] | None = None) -> pd.DataFrame:
    """Per year of `coverage`: how many agencies of the region it lists, how many of them have a report that
    was read, and how many are missing (no report found, or none readable). No rows when the region matches
    no agency."""
    try:
        where, args = _where(con, region, years)
    except NoMatch:
        return pd.DataFrame(columns=["year", "agencies", "reporting", "missing"])
    return con.execute(
        "SELECT year, count(*) AS agencies, count(*) FILTER (WHERE status IN ('parsed', 'parsed_from_file')) "
        f"AS reporting, agencies - reporting AS missing FROM coverage WHERE true {where} GROUP BY year "
        "ORDER BY year", args).df()


def missing_line(counts: pd.DataFrame) -> str:
    """The line under compare's table: e.g. "missing reports: 2019 1 of 3, 2020 none of 3"."""
    if counts.empty:
        return "missing reports: no agency of the registry in this region"
    years = ", ".join(f"{r.year} {r.missing or 'none'} of {r.agencies}" for r in counts.itertuples())
    return f"missing reports (no report found, or none readable; not a decline): {years}"


def compare(con: duckdb.DuckDBPyConnection, measure: str, region: str | None = None,
            years: tuple[int, int] | None = None, top: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wide table: one row per agency with a column per year, first, last, change, pct_change, sorted by
    change; long frame of the yearly values of the agencies in the table). NoMatch when the region matches
    no agency or no value of the measure is left."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}: choose one of {', '.join(MEASURES)}")
    spec, params = MEASURES[measure]
    where, args = _where(con, region, years)
    long = con.execute(f"SELECT * FROM ({spec.sql}) m WHERE value IS NOT NULL {where} ORDER BY agency_id, year",
                       [*params, *args]).df()
    if long.empty:
        scope = "".join([f" in region {region!r}" if region else "", f" in {years[0]}-{years[1]}" if years else ""])
        raise NoMatch(f"no {measure} values{scope}")
    wide = long.pivot_table(index=["agency_id", "agency", "region"], columns="year", values="value",
                            aggfunc="first").reset_index()
    by_agency = long.groupby("agency_id")["value"]  # in year order: the query orders by agency_id, year
    wide["first"] = wide["agency_id"].map(by_agency.first())
    wide["last"] = wide["agency_id"].map(by_agency.last())
    wide["change"] = wide["last"] - wide["first"]
    wide["pct_change"] = (100 * wide["change"] / wide["first"].where(wide["first"] > 0)).round(1)
    wide = wide.sort_values(["change", "pct_change", "agency_id"], na_position="last").reset_index(drop=True)
    if top:
        wide = wide.head(top)
    wide.columns = [str(c) for c in wide.columns]
    return wide, long[long["agency_id"].isin(wide["agency_id"])]


def cjk_font() -> Path:
    """The CJK font the project installs (Noto Sans CJK, from PyPI), so Chinese labels are not boxes."""
    import cvttf_NotoSansCJK_Regular

    return Path(cvttf_NotoSansCJK_Regular.get_TTF_path())


TEMPLATE_CHANGE = 2020.5  # the 2021 template replaced the 2019 one from the 2021 reports on


def decline_order(long: pd.DataFrame) -> list[str]:
    """The agency ids of `long` in compare's table order: change (last - first year), then pct_change (to one
    decimal), then id, ascending, agencies without a change last."""
    by_agency = long.sort_values("year").groupby("agency_id")["value"]
    first, last = by_agency.first(), by_agency.last()
    change = last - first
    order = pd.DataFrame({"change": change, "pct": (100 * change / first.where(first > 0)).round(1)})
    return list(order.sort_values(["change", "pct"], na_position="last", kind="stable").index)


def _plain(text: str) -> str:
    """Text matplotlib draws as it is: it reads $…$ as math, and fails on bad math (an agency's name)."""
    return str(text).replace("$", r"\$")


def figure(long: pd.DataFrame, title: str):
    """The chart as a matplotlib figure: one line per agency, in the legend in compare's decline order, and a
    marked line between 2020 and 2021 where the template changed (values on either side are not always the
    same quantity)."""
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font = cjk_font()
    font_manager.fontManager.addfont(str(font))
    family = font_manager.FontProperties(fname=str(font)).get_name()
    with plt.rc_context({"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
        lines = dict(iter(long.groupby("agency_id", sort=False)))
        for agency_id in decline_order(long):
            line = lines[agency_id]
            ax.plot(line["year"], line["value"], marker="o", label=_plain(line["agency"].iat[0]))
        years = sorted(long["year"].unique())
        if years and years[0] < TEMPLATE_CHANGE < years[-1]:
            ax.axvline(TEMPLATE_CHANGE, color="grey", linestyle="--", linewidth=1)
            ax.text(TEMPLATE_CHANGE, 1, " 2021年起新模板\n (template change)", transform=ax.get_xaxis_transform(),
                    va="top", ha="left", fontsize=8, color="dimgrey")
        ax.set_title(_plain(title))
        ax.set_xlabel("年份 (year)")
        ax.set_ylabel("数量")
        ax.set_xticks(years)
        ax.grid(alpha=0.3)
        if len(long):
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
    return fig


def chart(long: pd.DataFrame, path: str | Path, title: str) -> Path:
    """A PNG line chart of the yearly values (`figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = figure(long, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

"""`region_rollup`, kept up to date from what changed: a refresh makes its rows again only for the regions (and
their ancestors) and years whose current reports changed, or whose count of listed units did.

State, in the database's schema `rollup_state` (kept from build to build, not for analysts):
- `summed_reports`: the current reports the sums were made from (report_id, region, year): the next build's current
  reports against these are what changed.
- `region_sums`: for every region prefix, year, metric and applicant, the sums over the units under it, unrounded:
  a prefix's sums are its own units' fact rows plus its children's sums, so a change in a county is summed
  again into its city and province from their other children's sums, not from every fact row under them.
- `listed_units`: the units `coverage` lists per region prefix and year (region_rollup.units).
A database without the state (a new file, or one built before it existed) gets it whole: every region changed.
"""

from __future__ import annotations

import duckdb

SCHEMA = "rollup_state"

_SETUP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.summed_reports (report_id VARCHAR, region VARCHAR, "year" BIGINT);
CREATE TABLE IF NOT EXISTS {SCHEMA}.region_sums (region VARCHAR, parent VARCHAR, "year" BIGINT, metric VARCHAR,
    applicant VARCHAR, units_with_row BIGINT, units_reporting BIGINT, total HUGEINT, total_wan_yuan DOUBLE);
CREATE TABLE IF NOT EXISTS {SCHEMA}.listed_units (region VARCHAR, "year" BIGINT, units BIGINT);
CREATE TABLE IF NOT EXISTS region_rollup (region VARCHAR, "year" BIGINT, metric VARCHAR, applicant VARCHAR,
    units BIGINT, units_reporting BIGINT, total BIGINT, total_wan_yuan DOUBLE);

CREATE OR REPLACE TEMP TABLE rollup_now AS SELECT report_id, coalesce(region, '') AS region, "year" FROM reports;
-- region-years whose current reports differ from those the sums hold (both sides: a report that moved
-- region changes both)
CREATE OR REPLACE TEMP TABLE rollup_changed AS
SELECT DISTINCT region, "year" FROM (
    (FROM rollup_now EXCEPT FROM {SCHEMA}.summed_reports)
    UNION ALL (FROM {SCHEMA}.summed_reports EXCEPT FROM rollup_now));
CREATE OR REPLACE TEMP TABLE rollup_affected AS
SELECT DISTINCT region, len(string_split(region, '/')) AS depth, "year"
FROM (SELECT unnest(region_prefixes(region)) AS region, "year" FROM rollup_changed);
CREATE OR REPLACE TEMP TABLE rollup_listed AS
SELECT region, "year", count(*) AS units
FROM (SELECT unnest(region_prefixes(coalesce(region, ''))) AS region, "year" FROM coverage)
GROUP BY ALL;
"""

# A level's prefixes in chunks of about this many current reports: grouping a full build's leaf level at once
# (every fact row, millions of groups) ran out of DuckDB's 256 MB at 300,000 reports.
CHUNK_REPORTS = 20_000

# A level's prefixes, numbered into chunks by the current reports whose region is exactly the prefix.
_CHUNKS = """
CREATE OR REPLACE TEMP TABLE rollup_level AS
SELECT a.region, a."year", sum(coalesce(n.reports, 0) + 1) OVER (ORDER BY a.region, a."year") // $size AS chunk
FROM rollup_affected a
LEFT JOIN (SELECT region, "year", count(*) AS reports FROM rollup_now GROUP BY ALL) n
       ON n.region = a.region AND n."year" IS NOT DISTINCT FROM a."year"
WHERE a.depth = $depth"""

# One chunk of a level of region prefixes, deepest level first: a prefix's own units' rows (facts of the current
# reports whose region is exactly the prefix) and its children's sums, made a level earlier.
_LEVEL = (
    f"""DELETE FROM {SCHEMA}.region_sums s USING rollup_level a
        WHERE a.chunk = $chunk AND s.region = a.region AND s."year" IS NOT DISTINCT FROM a."year" """,
    f"""INSERT INTO {SCHEMA}.region_sums
        WITH here AS (SELECT region, "year" FROM rollup_level WHERE chunk = $chunk),
        own AS (
            SELECT coalesce(r.region, '') AS region, r."year", f.metric, coalesce(f.applicant, '') AS applicant,
                   count(*) AS units_with_row,
                   count(CASE WHEN f.unit = 'count' THEN as_count(f.value) ELSE f.value END) AS units_reporting,
                   sum(as_count(f.value)) FILTER (WHERE f.unit = 'count') AS total,
                   sum(f.value) FILTER (WHERE f.unit <> 'count') AS total_wan_yuan
            FROM facts_all_versions f JOIN reports r USING (report_id)
            SEMI JOIN here h ON h.region = coalesce(r.region, '') AND h."year" IS NOT DISTINCT FROM r."year"
            WHERE f.metric IS NOT NULL
            GROUP BY ALL
        ), below AS (
            SELECT s.parent AS region, s."year", s.metric, s.applicant, s.units_with_row, s.units_reporting,
                   s.total, s.total_wan_yuan
            FROM {SCHEMA}.region_sums s
            SEMI JOIN here h ON h.region = s.parent AND h."year" IS NOT DISTINCT FROM s."year"
        )
        SELECT region, CASE WHEN $depth > 1 THEN regexp_replace(region, '/[^/]*$', '') END, "year", metric,
               applicant, sum(units_with_row), sum(units_reporting), sum(total), sum(total_wan_yuan)
        FROM (FROM own UNION ALL FROM below)
        GROUP BY region, "year", metric, applicant""",
)

_FINISH = f"""
-- rows to make again: the prefixes summed again, and those whose listed units changed
CREATE OR REPLACE TEMP TABLE rollup_rows AS
SELECT region, "year" FROM rollup_affected
UNION SELECT region, "year" FROM ((FROM rollup_listed EXCEPT FROM {SCHEMA}.listed_units)
                                 UNION ALL (FROM {SCHEMA}.listed_units EXCEPT FROM rollup_listed));
DELETE FROM region_rollup r USING rollup_rows c WHERE r.region = c.region AND r."year" IS NOT DISTINCT FROM c."year";
INSERT INTO region_rollup
SELECT s.region, s."year", s.metric, s.applicant, TRY_CAST(greatest(l.units, s.units_with_row) AS BIGINT),
       TRY_CAST(s.units_reporting AS BIGINT), TRY_CAST(s.total AS BIGINT), round(s.total_wan_yuan, 6)
FROM {SCHEMA}.region_sums s SEMI JOIN rollup_rows c ON c.region = s.region AND c."year" IS NOT DISTINCT FROM s."year"
LEFT JOIN rollup_listed l ON l.region = s.region AND l."year" = s."year";

DELETE FROM {SCHEMA}.listed_units;
INSERT INTO {SCHEMA}.listed_units FROM rollup_listed;
DELETE FROM {SCHEMA}.summed_reports r USING rollup_changed c
WHERE r.region = c.region AND r."year" IS NOT DISTINCT FROM c."year";
INSERT INTO {SCHEMA}.summed_reports
FROM rollup_now n SEMI JOIN rollup_changed c ON c.region = n.region AND c."year" IS NOT DISTINCT FROM n."year";
DROP TABLE rollup_now; DROP TABLE rollup_changed; DROP TABLE rollup_affected; DROP TABLE rollup_listed;
DROP TABLE rollup_rows; DROP TABLE IF EXISTS rollup_level;
"""


def update(con: duckdb.DuckDBPyConnection) -> int:
    """Bring `region_rollup` (and its state) up to the database's current reports and `coverage`, in place.
    Needs the views of load/views (reports, coverage, the macros as_count and region_prefixes). Returns the
    number of region-years whose current reports changed."""
    con.execute(_SETUP)
    changed, depth = con.execute("SELECT (SELECT count(*) FROM rollup_changed), "
                                 "(SELECT coalesce(max(depth), 0) FROM rollup_affected)").fetchone()
    for level in range(depth, 0, -1):
        con.execute(_CHUNKS, {"depth": level, "size": CHUNK_REPORTS})
        for (chunk,) in con.execute("SELECT DISTINCT chunk FROM rollup_level ORDER BY 1").fetchall():
            params = {"chunk": chunk, "depth": level}
            for sql in _LEVEL:
                con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    con.execute(_FINISH)
    return changed

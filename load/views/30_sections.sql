-- 三: applications per report and applicant column (总计 included). Outcome groups are the sums of
-- their printed items (a printed subtotal is used only where no item is printed). Every 三 and 四
-- value is a count (as_count: see warehouse.py); a sum of BIGINTs is a HUGEINT, cast back.
CREATE VIEW requests AS
WITH f AS (SELECT * REPLACE (as_count(value) AS value) FROM facts WHERE section = '三' AND metric IS NOT NULL)
SELECT agency_id, agency, year, template, report_id, applicant,
       max(value) FILTER (WHERE metric = 'requests_new') AS received,
       max(value) FILTER (WHERE metric = 'requests_carried_over') AS carried_over,
       max(value) FILTER (WHERE metric = 'outcome_disclosed') AS disclosed,
       max(value) FILTER (WHERE metric = 'outcome_partial') AS partially_disclosed,
       TRY_CAST(coalesce(sum(value) FILTER (WHERE metric LIKE 'outcome\_withheld\_%' ESCAPE '\'),
                         max(value) FILTER (WHERE metric = 'outcome_withheld')) AS BIGINT) AS withheld,
       TRY_CAST(coalesce(sum(value) FILTER (WHERE metric LIKE 'outcome\_unavailable\_%' ESCAPE '\'),
                         max(value) FILTER (WHERE metric = 'outcome_unavailable')) AS BIGINT) AS unavailable,
       TRY_CAST(coalesce(sum(value) FILTER (WHERE metric LIKE 'outcome\_not\_processed\_%' ESCAPE '\'),
                         max(value) FILTER (WHERE metric = 'outcome_not_processed')) AS BIGINT) AS not_processed,
       TRY_CAST(coalesce(sum(value) FILTER (WHERE metric LIKE 'outcome\_other\_%' ESCAPE '\'),
                         max(value) FILTER (WHERE metric = 'outcome_other')) AS BIGINT) AS other_handling,
       max(value) FILTER (WHERE metric = 'outcome_total') AS handled_total,
       max(value) FILTER (WHERE metric = 'requests_carried_forward') AS carried_forward
FROM f
GROUP BY ALL;

-- 三's outcomes in long form: one row per report, applicant column and printed outcome row, the
-- groups (予以公开 … 其他处理, 总计) and the categories under them (不予公开's eight reasons …):
-- `requests` sums the categories into their groups; this keeps each of them.
CREATE VIEW request_outcomes AS
SELECT agency_id, agency, year, template, report_id, applicant, outcome,
       CASE WHEN metric = 'outcome_' || outcome THEN NULL ELSE metric END AS category,
       row_label, as_count(value) AS value, value_status
FROM (
    SELECT *, regexp_extract(metric, '^outcome_(disclosed|partial|withheld|unavailable|not_processed|other|total)',
                             1) AS outcome
    FROM facts
    WHERE section = '三' AND metric LIKE 'outcome\_%' ESCAPE '\'
);

-- 四: the three groups (行政复议, 未经复议直接起诉, 复议后起诉) with their five results.
CREATE VIEW review_litigation AS
SELECT agency_id, agency, year, template, report_id,
       regexp_replace(metric, '_(upheld|corrected|other|pending|total)$', '') AS group_code,
       row_label AS "group",
       max(value) FILTER (WHERE metric LIKE '%\_upheld' ESCAPE '\') AS upheld,
       max(value) FILTER (WHERE metric LIKE '%\_corrected' ESCAPE '\') AS corrected,
       max(value) FILTER (WHERE metric LIKE '%\_other' ESCAPE '\') AS other,
       max(value) FILTER (WHERE metric LIKE '%\_pending' ESCAPE '\') AS pending,
       max(value) FILTER (WHERE metric LIKE '%\_total' ESCAPE '\') AS total
FROM (SELECT * REPLACE (as_count(value) AS value) FROM facts WHERE section = '四' AND metric IS NOT NULL)
GROUP BY ALL;

-- Sums over the units (governments and departments) of each region and year, at every level of the region:
-- a unit of 浙江省/宁波市/鄞州区 counts in 浙江省, 浙江省/宁波市 and 浙江省/宁波市/鄞州区 (every prefix of its path).
-- `units`: the region's units that `coverage` lists that year (the registry's, found or not);
-- `units_reporting`: those whose current report gives the metric a number, so a sum over an incomplete set
-- shows as units_reporting < units. The fact rows are grouped under the unit's own region first (a unit has
-- one current report per year and a report one value per metric and applicant, so counting rows counts units),
-- and those groups, far fewer than facts, are then summed into every ancestor.
-- Counts sum to `total` (BIGINT), money to `total_wan_yuan` (DOUBLE, rounded: a float sum's last bits
-- depend on DuckDB's thread scheduling, and reports print <= 4 decimals).
-- A table (grouping every fact row is too slow for every query), kept from build to build and made again
-- only where the current reports changed: load/rollup.py, run after these files.
CREATE MACRO region_prefixes(path) AS (
    list_transform(range(1, len(string_split(path, '/')) + 1),
                   lambda k: array_to_string(string_split(path, '/')[1:k], '/'))
);

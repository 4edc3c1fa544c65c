-- Yearly decisions of 行政许可, 行政处罚 and 行政强制: one series across both templates (2019
-- 处理决定数量 = 2021 本年处理决定数量). A unit's change is ranked among the units of its parent
-- region in the same year: rank 1 is the largest decline. `agencies`, `agencies_reporting` and `missing`:
-- the units of the parent region in `coverage` that year, those whose report was read, and the rest (no
-- report found, or none readable), so that a gap is never read as a decline.
CREATE VIEW decisions_trend AS
WITH d AS (
    SELECT f.agency_id, f.agency, r.region, r.parent_region, r.level, r.kind, f.year, f.template, f.metric,
           as_count(f.value) AS decisions, f.value_status, f.report_id
    FROM decision_facts_all_versions f JOIN reports r USING (report_id)  -- the current versions' rows
), t AS (
    SELECT d.*, p.decisions AS prev_decisions, d.decisions - p.decisions AS change,
           CASE WHEN p.decisions > 0 THEN round(100 * (d.decisions - p.decisions) / p.decisions::DOUBLE, 2) END
               AS pct_change
    FROM d LEFT JOIN d AS p ON p.agency_id = d.agency_id AND p.metric = d.metric AND p.year = d.year - 1
), c AS (
    SELECT parent_region, "year", count(*) AS agencies,
           count(*) FILTER (WHERE status IN ('parsed', 'parsed_from_file')) AS agencies_reporting
    FROM coverage GROUP BY ALL
)
SELECT t.*,
       CASE WHEN change IS NOT NULL THEN
           rank() OVER (PARTITION BY metric, parent_region, year, change IS NOT NULL ORDER BY change, pct_change)
       END AS decline_rank,
       c.agencies, c.agencies_reporting, c.agencies - c.agencies_reporting AS missing
FROM t LEFT JOIN c USING (parent_region, "year");

CREATE VIEW licensing_trend AS
    SELECT * EXCLUDE (metric) FROM decisions_trend WHERE metric = 'licensing_decisions';

CREATE VIEW enforcement_trend AS
    SELECT * FROM decisions_trend WHERE metric IN ('penalty_decisions', 'coercion_decisions');

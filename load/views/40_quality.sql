-- Per report version: what failed, what could not be assessed, what could not be read.
CREATE VIEW data_quality AS
SELECT r.report_id, r.agency_id, r.agency, r.year, r.template, r.status, r.failure, r.is_current,
       r.n_values, r.n_unparsed,
       count(c.rule) FILTER (WHERE c.status = 'fail') AS checks_failed,
       count(c.rule) FILTER (WHERE c.status = 'not_assessable') AS checks_not_assessable,
       string_agg(DISTINCT c.rule, ',' ORDER BY c.rule) FILTER (WHERE c.status = 'fail') AS failed_rules,
       count(c.rule) FILTER (WHERE c.status = 'mismatch') AS narrative_mismatches,  -- prose against table
       translate('二三四', coalesce(r.sections, ''), '') AS missing_sections,  -- the sections not read
       r.problems, r.url, r.content_sha256
FROM reports_all_versions r LEFT JOIN checks_all_versions c USING (report_id)
GROUP BY ALL;

-- The soft identities across years of one agency (format.md 6-8), current versions only:
-- 6: 上年结转 (t) = 结转下年度继续办理 (t-1), per applicant column;
-- 7: 现行有效件数 (t) = 现行有效件数 (t-1) + 本年制发件数 (t) - 本年废止件数 (t) (2021 template);
-- 8: 上一年项目数量 (t) = 上一年项目数量 (t-1) + 本年增/减 (t-1) (2019 template).
CREATE VIEW cross_year_checks AS
WITH v AS (
    SELECT agency_id, agency, year, metric, coalesce(applicant, '') AS applicant, as_count(value) AS value
    FROM facts WHERE metric IS NOT NULL
), r AS (
    SELECT 6::BIGINT AS rule, cur.agency_id, cur.agency, cur.year, cur.applicant AS subject,
           prev.value AS expected, cur.value AS actual
    FROM v cur JOIN v prev ON prev.agency_id = cur.agency_id AND prev.year = cur.year - 1
         AND prev.applicant = cur.applicant AND prev.metric = 'requests_carried_forward'
    WHERE cur.metric = 'requests_carried_over'
    UNION ALL
    SELECT 7, cur.agency_id, cur.agency, cur.year, replace(cur.metric, '_in_force', ''),
           prev.value + iss.value - rep.value, cur.value
    FROM v cur
    JOIN v prev ON prev.agency_id = cur.agency_id AND prev.year = cur.year - 1 AND prev.metric = cur.metric
    JOIN v iss ON iss.agency_id = cur.agency_id AND iss.year = cur.year
         AND iss.metric = replace(cur.metric, '_in_force', '_issued')
    JOIN v rep ON rep.agency_id = cur.agency_id AND rep.year = cur.year
         AND rep.metric = replace(cur.metric, '_in_force', '_repealed')
    WHERE cur.metric LIKE '%\_in\_force' ESCAPE '\'
    UNION ALL
    SELECT 8, cur.agency_id, cur.agency, cur.year, replace(cur.metric, '_items_prev_year', ''),
           prev.value + chg.value, cur.value
    FROM v cur
    JOIN v prev ON prev.agency_id = cur.agency_id AND prev.year = cur.year - 1 AND prev.metric = cur.metric
    JOIN v chg ON chg.agency_id = prev.agency_id AND chg.year = prev.year
         AND chg.metric = replace(cur.metric, '_items_prev_year', '_items_change')
    WHERE cur.metric LIKE '%\_items\_prev\_year' ESCAPE '\'
)
SELECT rule, 'soft' AS severity, agency_id, agency, year, subject, expected, actual,
       CASE WHEN expected IS NULL OR actual IS NULL THEN 'not_assessable'
            WHEN expected = actual THEN 'pass' ELSE 'fail' END AS status
FROM r;

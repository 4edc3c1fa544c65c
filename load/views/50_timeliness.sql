-- Timeliness: 《中华人民共和国政府信息公开条例》第五十条 asks for a year's report by 31 January of the next year.
-- One row per report (its current version). The publication date is the one the page states (published),
-- else the day the fetch log first saw the report's URL (a version's fetched_at is its first sighting, so
-- the earliest over the URL's versions), in China's time zone, flagged as such: a page first seen late may
-- have been published on time before the crawler first looked. A report without a year has no deadline.
CREATE VIEW timeliness AS
WITH first_seen AS (
    SELECT url, CAST(timezone('Asia/Shanghai', min(fetched_at)) AS DATE) AS first_seen
    FROM reports_all_versions GROUP BY url
), dated AS (
    -- TRY_CAST: a lake written before published was a date (FORMAT 2) holds it as an ISO string
    SELECT r.agency_id, r.agency, r.region, r."year", r.report_id, r.url,
           coalesce(TRY_CAST(r.published AS DATE), f.first_seen) AS published,
           CASE WHEN TRY_CAST(r.published AS DATE) IS NOT NULL THEN 'page'
                WHEN f.first_seen IS NOT NULL THEN 'first_seen' END AS published_source,
           CASE WHEN r."year" > 0 THEN make_date(r."year" + 1, 1, 31) END AS deadline
    FROM reports r LEFT JOIN first_seen f USING (url)
)
SELECT agency_id, agency, region, "year", published, published_source, deadline,
       greatest(published - deadline, 0) AS days_late, published <= deadline AS on_time, report_id, url
FROM dated;

-- The share of reports on time per region and year, at every level of the region (浙江省, 浙江省/宁波市,
-- 浙江省/宁波市/鄞州区): a province's share counts every unit under it. Reports without a deadline or a
-- date are counted in `reports` but in neither `on_time` nor `late`.
CREATE VIEW timeliness_by_region AS
WITH levels AS (
    SELECT t.*, unnest(region_prefixes(t.region)) AS rollup_region  -- the macro of 30_sections.sql
    FROM timeliness t
    WHERE t.region IS NOT NULL AND t.region <> ''
)
SELECT rollup_region AS region, "year", count(*) AS reports, count(*) FILTER (WHERE on_time) AS on_time,
       count(*) FILTER (WHERE NOT on_time) AS late,
       count(*) FILTER (WHERE published_source = 'first_seen') AS dated_by_first_seen,
       round(count(*) FILTER (WHERE on_time) / nullif(count(on_time), 0), 4) AS share_on_time
FROM levels
GROUP BY ALL;

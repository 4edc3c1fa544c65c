-- What the runs found for each agency of the registry (the `sources` table; without one, the agencies the
-- lake holds) and each year they covered: every year from the earliest to the latest that a loaded report
-- or a report link in the fetch log names. One row per agency and year, so a hole is a row, not an absence.
-- A table, computed at the build: the fetch log's sightings are there only then.
-- A failure's reason is ParseFailure's (extract/cells.py), the text before the first colon.
CREATE TABLE coverage AS
WITH reasons (reason, on_file, status) AS (  -- any other failure: failed
    VALUES ('no text layer (scanned)', NULL, 'image_only'),
           ('needs converter', NULL, 'needs_converter'),
           ('unreadable file', NULL, 'file_unreadable'),
           ('no report tables found', false, 'page_without_tables')
), years AS (
    SELECT unnest(generate_series(min("year"), max("year"))) AS "year"
    FROM (SELECT "year" FROM reports_all_versions UNION ALL SELECT "year" FROM report_versions_seen)
    WHERE "year" > 0
), agencies AS (
    SELECT agency_id, agency, region FROM sources
    UNION ALL
    SELECT agency_id, any_value(agency), any_value(region) FROM reports_all_versions
    WHERE agency_id NOT IN (SELECT agency_id FROM sources)
    GROUP BY agency_id
), chosen AS (  -- the current version; else (none current) the last loaded
    SELECT *, is_file(form, source_page, url) AS file
    FROM reports_all_versions
    QUALIFY row_number() OVER (PARTITION BY agency_id, "year" ORDER BY is_current DESC, loaded_at DESC NULLS LAST,
                                                                     report_id DESC) = 1
)
SELECT a.agency_id, a.agency, a.region,
       CASE WHEN contains(a.region, '/') THEN regexp_replace(a.region, '/[^/]*$', '') ELSE a.region END
           AS parent_region,
       y."year",
       CASE WHEN c.report_id IS NULL THEN 'not_found'
            WHEN c.status IN ('parsed', 'truncated') THEN CASE WHEN c.file THEN 'parsed_from_file' ELSE 'parsed' END
            ELSE coalesce(m.status, 'failed') END AS status,
       c.report_id, c.url, c.form, c.source_page, c.failure
FROM agencies a CROSS JOIN years y
LEFT JOIN chosen c ON c.agency_id = a.agency_id AND c."year" = y."year"
LEFT JOIN reasons m ON m.reason = split_part(c.failure, ':', 1) AND c.status = 'failed'
     AND (m.on_file IS NULL OR m.on_file = c.file);

-- A file (PDF, Word) rather than a page: by the form it was read as; a version that was never read (a
-- failure before reading) by what else says so: the page that linked it, or its URL's suffix.
CREATE MACRO is_file(form, source_page, url) AS coalesce(
    form IN ('pdf', 'docx', 'doc', 'rtf'),
    source_page IS NOT NULL OR regexp_matches(lower(url), '\.(pdf|docx?|wps|rtf)([?#].*)?$'));

-- The current version of each report: of the versions of an agency's report for a year, those that
-- parsed (parsed or truncated) first; among them a page before a file (one report: the page's tables are
-- used, the file stays beside it as a version that is not current), then the one the fetch log saw last
-- (last_seen: a page that went A -> B -> A is at A again). When none parsed, a file before a page (a page
-- without tables that links a scan says less than the scan). A version that failed (an empty, cut-off or
-- unreadable page) never displaces one that parsed, and a failed version of a URL that has a parsed
-- version is never current: it stays beside it in data_quality. A version the log does not know (a lake
-- loaded without its fetch log) counts as seen when first fetched. Decided at each build, so a version
-- seen again is current again without being parsed again, and `reparse` decides as a fresh run does.
CREATE TABLE reports_all_versions AS
WITH r AS (
    SELECT l.*, l.status IN ('parsed', 'truncated') AS parsed_ok, is_file(l.form, l.source_page, l.url) AS file,
           coalesce(s.last_seen, l.fetched_at) AS seen
    FROM reports_stored l LEFT JOIN report_versions_seen s ON s.url = l.url AND s.sha256 = l.content_sha256
), ranked AS (
    SELECT *, bool_or(parsed_ok) OVER (PARTITION BY url) AS url_parsed,
           row_number() OVER (PARTITION BY agency_id, "year"
                              ORDER BY parsed_ok DESC, CASE WHEN parsed_ok THEN file ELSE NOT file END,
                                       seen DESC NULLS LAST, loaded_at DESC NULLS LAST, report_id DESC) AS rank
    FROM r
)
SELECT * EXCLUDE (parsed_ok, file, seen, url_parsed, rank), rank = 1 AND (parsed_ok OR NOT url_parsed) AS is_current
FROM ranked;

-- The current versions' rows; *_all_versions keep every version.
CREATE VIEW reports AS SELECT * FROM reports_all_versions WHERE is_current;
CREATE VIEW facts AS
    SELECT * FROM facts_all_versions WHERE report_id IN (SELECT report_id FROM reports);
CREATE VIEW checks AS
    SELECT * FROM checks_all_versions WHERE report_id IN (SELECT report_id FROM reports);

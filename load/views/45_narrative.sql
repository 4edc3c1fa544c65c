-- The prose against the tables (transform/narrative.py, data/narrative.csv): each number a current
-- report's text attaches to a known quantity, with what its tables print for it. `status`: match |
-- mismatch (the prose says one number, the table another) | not_in_table (the table prints no number there).
CREATE VIEW narrative_checks AS
SELECT c.agency_id, c.agency, c."year", c.report_id, c.rule, c.subject AS metrics, c.detail AS sentence,
       c.actual AS "number", c.expected AS table_value, c.status, r.url
FROM checks c JOIN reports r USING (report_id)
WHERE c.severity = 'narrative';

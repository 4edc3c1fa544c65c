-- The current version of each report (the latest fetched version of an agency's report for a year)
-- and its facts and checks. *_all_versions keep every version.
CREATE VIEW reports AS SELECT * FROM reports_all_versions WHERE is_current;
CREATE VIEW facts AS
    SELECT * FROM facts_all_versions WHERE report_id IN (SELECT report_id FROM reports);
CREATE VIEW checks AS
    SELECT * FROM checks_all_versions WHERE report_id IN (SELECT report_id FROM reports);

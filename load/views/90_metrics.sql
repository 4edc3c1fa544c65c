-- The data dictionary (data/dictionary.csv, registered by the build as `dictionary_cells`: one row per
-- cell and template) as the table `metrics`: one row per quantity a fact can be (metric and applicant),
-- with its official labels in each template side by side.
CREATE TABLE metrics AS
WITH m AS (
    SELECT metric, section, nullif(block, '') AS block, nullif(applicant, '') AS applicant,
           string_agg(template, '|' ORDER BY template) AS templates,
           any_value(row_label) FILTER (WHERE template = '2019') AS row_label_2019,
           any_value(column_label) FILTER (WHERE template = '2019') AS column_label_2019,
           any_value(row_label) FILTER (WHERE template = '2021') AS row_label_2021,
           any_value(column_label) FILTER (WHERE template = '2021') AS column_label_2021,
           any_value(unit) AS unit, bool_and(continues) AS series, 
           string_agg(template, '|' ORDER BY template) FILTER (WHERE kind = 'subtotal') AS subtotal_in,
           min(position) AS position
    FROM dictionary_cells
    GROUP BY ALL
)
SELECT metric, section, block, applicant, templates, row_label_2019, column_label_2019, row_label_2021,
       column_label_2021, unit, series,
       concat(section, ' ' || '第二十条第（' || translate(block, '123456789', '一二三四五六七八九') || '）项', ': ',
              CASE WHEN templates <> '2019|2021' THEN templates || ' ' || coalesce(row_label_2019, row_label_2021)
                                                      || ' / ' || coalesce(column_label_2019, column_label_2021)
                   WHEN row_label_2019 = row_label_2021 AND column_label_2019 = column_label_2021
                   THEN row_label_2019 || ' / ' || column_label_2019
                   ELSE '2019 ' || row_label_2019 || ' / ' || column_label_2019 || ', 2021 '
                        || row_label_2021 || ' / ' || column_label_2021 END,
              CASE WHEN unit = 'wan_yuan' THEN ' (万元)' END,
              CASE WHEN subtotal_in = templates THEN '; a group row some agencies add'
                   WHEN subtotal_in IS NOT NULL THEN '; ' || subtotal_in || ': a group row some agencies add' END,
              CASE WHEN series AND templates = '2019|2021' THEN '; one series across the template change' END)
           AS description
FROM m
ORDER BY position;

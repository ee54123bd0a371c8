-- The name helpers over the tables' own columns.
SELECT span_kind_name(kind) AS kind, status_name(status_code) AS status, count(*) AS spans
FROM spans
GROUP BY 1, 2
ORDER BY 1, 2;

-- severity_name, span_kind_name and status_name name OTLP's codes; codes
-- outside the enum give NULL.
SELECT n,
       severity_name(n) AS severity,
       span_kind_name(n) AS kind,
       status_name(n) AS status
FROM (VALUES (0), (1), (2), (3), (5), (6), (9), (13), (17), (21), (24), (25), (-1)) AS t(n)
ORDER BY n;

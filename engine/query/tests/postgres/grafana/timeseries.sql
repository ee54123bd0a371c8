SELECT
  floor(extract(epoch from start_time)/60)*60 AS "time",
  service_name::text AS metric,
  count(*) AS spans
FROM spans
WHERE
  start_time BETWEEN '{FROM}' AND '{TO}'
GROUP BY 1, 2
ORDER BY 1, 2

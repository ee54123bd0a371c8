SELECT date_bin(INTERVAL '1 minute', time) AS minute, metric_name, avg(value) FROM metrics GROUP BY 1, 2 ORDER BY 1

SELECT service_name, count(*) FROM logs GROUP BY service_name ORDER BY 2 DESC

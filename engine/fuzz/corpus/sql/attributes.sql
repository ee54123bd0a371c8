SELECT name, attributes['http.route'] AS route, duration_ns / 1e6 AS ms FROM spans WHERE status_code = 2 ORDER BY ms DESC LIMIT 10

WITH s AS (SELECT trace_id, name FROM spans) SELECT l.body, s.name FROM logs l JOIN s ON l.trace_id = s.trace_id UNION ALL SELECT body, NULL FROM logs

-- duration_ms turns nanoseconds, or the duration end_time - start_time,
-- into milliseconds; NULL stays NULL.
SELECT name,
       duration_ms(duration_ns) AS from_ns,
       duration_ms(end_time - start_time) AS from_interval,
       duration_ms(1500000) AS literal,
       duration_ms(NULL) AS nothing
FROM spans
WHERE hex_id(trace_id) = '1fdd7128f310c389df1a92ab81129629';

-- histogram_quantile over the metrics table's own columns (bucket_counts
-- List<UInt64>, explicit_bounds List<Float64>), one point per row, in ms.
SELECT attributes['http.route'] AS route,
       round(histogram_quantile(0.5, bucket_counts, explicit_bounds) * 1000, 2) AS p50_ms,
       round(histogram_quantile(0.99, bucket_counts, explicit_bounds) * 1000, 2) AS p99_ms
FROM metrics
WHERE metric_type = 'histogram' AND service_name = 'cart'
ORDER BY time DESC
LIMIT 3;

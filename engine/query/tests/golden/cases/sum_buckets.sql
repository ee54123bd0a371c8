-- sum_buckets adds bucket counts element-wise: the merged histogram of all
-- the points of a group, whose total equals sum(count).
SELECT service_name,
       sum_buckets(bucket_counts) AS buckets,
       sum(count) AS total
FROM metrics
WHERE metric_type = 'histogram' AND time > now() - INTERVAL '1 hour'
GROUP BY service_name
ORDER BY service_name;

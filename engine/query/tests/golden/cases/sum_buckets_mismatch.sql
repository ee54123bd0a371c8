-- Bucket counts of different lengths cannot be added: a clear error.
SELECT sum_buckets(counts)
FROM (VALUES ([1, 2, 3]), ([1, 2])) AS t(counts);

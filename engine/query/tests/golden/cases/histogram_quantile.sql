-- histogram_quantile follows Prometheus: linear interpolation inside the
-- bucket (lower bound 0 for the first), the largest finite bound in the
-- +Inf bucket, -Inf/+Inf for q outside [0, 1], NaN without observations,
-- NULL when the counts do not have one more entry than the bounds.
SELECT label, histogram_quantile(q, counts, bounds) AS value
FROM (VALUES
  ('median in first bucket', 0.25, [10, 10, 0, 0], [0.1, 0.5, 1.0]),
  ('at a bound',             0.5,  [10, 10, 0, 0], [0.1, 0.5, 1.0]),
  ('interpolated',           0.75, [10, 10, 0, 0], [0.1, 0.5, 1.0]),
  ('in +Inf bucket',         0.99, [1, 0, 0, 9],   [0.1, 0.5, 1.0]),
  ('q below 0',              -0.5, [1, 1, 1, 1],   [0.1, 0.5, 1.0]),
  ('q above 1',              1.5,  [1, 1, 1, 1],   [0.1, 0.5, 1.0]),
  ('no observations',        0.5,  [0, 0, 0, 0],   [0.1, 0.5, 1.0]),
  ('only +Inf bucket',       0.5,  [7],            []),
  ('malformed',              0.5,  [1, 2],         [0.1, 0.5, 1.0])
) AS t(label, q, counts, bounds);

-- The same works on logs and metrics, and service_name equals the
-- resource's service.name.
SELECT 'logs' AS tbl, count(*) AS n
FROM logs
WHERE attributes['http.route'] = '/api/cart'
  AND resource_attributes['service.name'] = service_name
UNION ALL
SELECT 'metrics', count(*)
FROM metrics
WHERE attributes['http.route'] = '/api/cart'
  AND resource_attributes['k8s.namespace.name'] = 'shop'
ORDER BY tbl;

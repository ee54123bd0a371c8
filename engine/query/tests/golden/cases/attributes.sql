-- Attribute maps are read by key on the real schema: record attributes
-- (Map<Utf8, Utf8>), resource attributes (Map<Utf8, Dictionary>), a missing
-- key is NULL, and int attributes compare once cast.
SELECT resource_attributes['service.name'] AS service,
       attributes['http.route'] AS route,
       count(*) AS spans,
       count(*) FILTER (WHERE CAST(attributes['http.response.status_code'] AS INT) >= 500) AS failed,
       count(attributes['no.such.key']) AS missing
FROM spans
WHERE attributes['http.route'] <> '/'
  AND resource_attributes['service.name'] IN ('checkout', 'frontend')
  AND scope_name = 'io.opentelemetry.http'
GROUP BY service, route
ORDER BY service, route;

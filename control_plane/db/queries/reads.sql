-- name: target_owned
SELECT 1 AS ok FROM targets WHERE id = %(target_id)s AND org_id = %(org_id)s;

-- name: results_page
SELECT target_id, region_id, scheduled_at, started_at, finished_at, status, latency_ms,
       status_code, error, error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details,
       count(*) OVER () AS total
FROM results
WHERE target_id = %(target_id)s AND org_id = %(org_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(region)s::text IS NULL OR region_id = %(region)s)
ORDER BY scheduled_at DESC, region_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: results_count
SELECT count(*) AS total
FROM results
WHERE target_id = %(target_id)s AND org_id = %(org_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(region)s::text IS NULL OR region_id = %(region)s);

-- name: uptime
SELECT count(*) FILTER (WHERE status <> 'missed') AS total,
       count(*) FILTER (WHERE status = 'up') AS up,
       count(*) FILTER (WHERE status = 'down') AS down,
       count(*) FILTER (WHERE status = 'degraded') AS degraded,
       count(*) FILTER (WHERE status = 'error') AS error,
       count(*) FILTER (WHERE status = 'missed') AS missed
FROM results
WHERE target_id = %(target_id)s AND org_id = %(org_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(region)s::text IS NULL OR region_id = %(region)s);

-- name: incidents_page
-- Incidents overlapping [from, to), newest first; optionally one target, optionally ongoing only.
SELECT i.id, i.target_id, i.started_at, i.ended_at, i.status, i.cause, i.regions, i.check_count,
       count(*) OVER () AS total
FROM incidents i
WHERE i.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL OR i.target_id = %(target_id)s)
  AND i.started_at < %(to)s
  AND (i.ended_at IS NULL OR i.ended_at >= %(from)s)
  AND (NOT %(ongoing_only)s OR i.ended_at IS NULL)
ORDER BY i.started_at DESC, i.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: incidents_count
SELECT count(*) AS total
FROM incidents i
WHERE i.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL OR i.target_id = %(target_id)s)
  AND i.started_at < %(to)s
  AND (i.ended_at IS NULL OR i.ended_at >= %(from)s)
  AND (NOT %(ongoing_only)s OR i.ended_at IS NULL);

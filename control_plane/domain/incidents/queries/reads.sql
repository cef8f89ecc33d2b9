-- Reads of incidents, for one target or the whole org.

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

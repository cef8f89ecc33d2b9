-- name: summary
-- The org's rollup in one statement. Status counts are the maintained per-org totals
-- (org_status_counts, 0200: a few delta rows per org and status, kept by the target_state
-- triggers; paused targets count as unknown: the reference's five keys); the
-- last 24 h from target_last_24h (the hourly rollups' last 24 complete hours per target, as
-- target reads show them, kept by the rollup job: one row per target instead of 24 per target
-- and region); the system figures from the schedules (leases in flight), the evaluation queue
-- and the missed slots of the last five minutes.
WITH counts AS (
    SELECT c.status, sum(c.n) AS n
    FROM org_status_counts c
    WHERE c.org_id = %(org_id)s
    GROUP BY c.status
),
cur AS (
    -- A target is paused exactly when it is disabled.
    SELECT coalesce(sum(n), 0)::bigint AS total,
           coalesce(sum(n) FILTER (WHERE status <> 'paused'), 0)::bigint AS enabled,
           coalesce(sum(n) FILTER (WHERE status = 'up'), 0)::bigint AS up,
           coalesce(sum(n) FILTER (WHERE status = 'down'), 0)::bigint AS down,
           coalesce(sum(n) FILTER (WHERE status = 'degraded'), 0)::bigint AS degraded,
           coalesce(sum(n) FILTER (WHERE status = 'error'), 0)::bigint AS error,
           coalesce(sum(n) FILTER (WHERE status IN ('unknown', 'paused')), 0)::bigint AS unknown
    FROM counts
),
day AS (
    SELECT coalesce(sum(d.checks), 0)::bigint AS checks, coalesce(sum(d.up), 0)::bigint AS up
    FROM targets t
    JOIN target_last_24h d ON d.target_id = t.id
    WHERE t.org_id = %(org_id)s
)
SELECT cur.total, cur.enabled, cur.up, cur.down, cur.degraded, cur.error, cur.unknown,
       (SELECT checks FROM day) AS checks,
       (SELECT up FROM day) AS checks_up,
       (SELECT count(*) FROM incidents i
        WHERE i.org_id = %(org_id)s
          AND (i.started_at >= now() - interval '24 hours' OR i.ended_at IS NULL
               OR i.ended_at >= now() - interval '24 hours')) AS incidents,
       (SELECT count(*) FROM schedules s JOIN targets t ON t.id = s.target_id
        WHERE t.org_id = %(org_id)s AND s.lease_expires_at > now()) AS in_flight,
       (SELECT count(*) FROM evaluation_queue q JOIN targets t ON t.id = q.target_id
        WHERE t.org_id = %(org_id)s) AS queue_depth,
       (SELECT count(*) FROM targets t
        JOIN results r ON r.target_id = t.id AND r.scheduled_at >= now() - interval '5 minutes'
        WHERE t.org_id = %(org_id)s AND r.status = 'missed') AS dropped
FROM cur;

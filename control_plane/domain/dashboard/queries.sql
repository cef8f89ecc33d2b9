-- name: summary
-- The org's rollup in one statement. Status counts come from org_target_status (the
-- set-based target_status; paused targets count as unknown: the reference's five keys); the
-- last 24 h from target_last_24h (the hourly rollups' last 24 complete hours per target, as
-- target reads show them, kept by the rollup job: one row per target instead of 24 per target
-- and region); the system figures from the schedules (leases in flight), the evaluation queue
-- and the missed slots of the last five minutes.
WITH cur AS (
    -- A target is paused exactly when it is disabled.
    SELECT count(*) AS total,
           count(*) FILTER (WHERE c.current_status <> 'paused') AS enabled,
           count(*) FILTER (WHERE c.current_status = 'up') AS up,
           count(*) FILTER (WHERE c.current_status = 'down') AS down,
           count(*) FILTER (WHERE c.current_status = 'degraded') AS degraded,
           count(*) FILTER (WHERE c.current_status = 'error') AS error,
           count(*) FILTER (WHERE c.current_status IN ('unknown', 'paused')) AS unknown
    FROM org_target_status(%(org_id)s) c
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

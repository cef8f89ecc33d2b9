-- name: summary
-- The org's rollup in one statement. Status counts come from target_status (paused targets
-- count as unknown: the reference's five keys); the last 24 h from the hourly rollups; the
-- system figures from the schedules (leases in flight), the evaluation queue and the missed
-- slots of the last five minutes.
WITH cur AS (
    SELECT c.current_status AS status, t.enabled
    FROM targets t JOIN target_status c ON c.target_id = t.id
    WHERE t.org_id = %(org_id)s
),
day AS (
    SELECT coalesce(sum(h.total - h.missed), 0)::bigint AS checks,
           coalesce(sum(h.up + h.degraded), 0)::bigint AS up
    FROM targets t
    JOIN result_rollups_hourly h ON h.target_id = t.id AND h.hour >= now() - interval '24 hours'
    WHERE t.org_id = %(org_id)s
)
SELECT (SELECT count(*) FROM cur) AS total,
       (SELECT count(*) FILTER (WHERE enabled) FROM cur) AS enabled,
       (SELECT count(*) FILTER (WHERE status = 'up') FROM cur) AS up,
       (SELECT count(*) FILTER (WHERE status = 'down') FROM cur) AS down,
       (SELECT count(*) FILTER (WHERE status = 'degraded') FROM cur) AS degraded,
       (SELECT count(*) FILTER (WHERE status = 'error') FROM cur) AS error,
       (SELECT count(*) FILTER (WHERE status IN ('unknown', 'paused')) FROM cur) AS unknown,
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
        WHERE t.org_id = %(org_id)s AND r.status = 'missed') AS dropped;

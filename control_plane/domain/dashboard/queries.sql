-- name: summary
-- The org's rollup in one statement, every part read from what is kept for it (issue 16: p99
-- under 20 ms with 60,000 targets). Status counts are the maintained per-org totals
-- (org_status_counts, 0200: a few delta rows per org and status, kept by the target_state
-- triggers; paused targets count as unknown: the reference's five keys); the last 24 h are the
-- org's totals of target_last_24h (target_last_24h_org, 0210: a few delta rows kept by its
-- triggers; each target's last 24 complete hours, as target reads show them, kept by the
-- rollup job); the checks in flight come from the worker's snapshot (0211) while it is at most
-- %(fresh_secs)s s old, else are counted live; the missed slots of the last five minutes from
-- their partial index (0212); the evaluation queue as it is.
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
    FROM target_last_24h_org d
    WHERE d.org_id = %(org_id)s
)
SELECT cur.total, cur.enabled, cur.up, cur.down, cur.degraded, cur.error, cur.unknown,
       (SELECT checks FROM day) AS checks,
       (SELECT up FROM day) AS checks_up,
       (SELECT count(*) FROM incidents i
        WHERE i.org_id = %(org_id)s
          AND (i.started_at >= now() - interval '24 hours' OR i.ended_at IS NULL
               OR i.ended_at >= now() - interval '24 hours')) AS incidents,
       -- The snapshot's sub-select runs only while it is fresh, the live count only when not.
       CASE WHEN (SELECT taken_at FROM in_flight_snapshot WHERE id = 1)
                 >= now() - make_interval(secs => %(fresh_secs)s)
            THEN coalesce((SELECT f.n FROM org_in_flight f WHERE f.org_id = %(org_id)s), 0)
            ELSE (SELECT count(*) FROM schedules s JOIN targets t ON t.id = s.target_id
                  WHERE t.org_id = %(org_id)s AND s.lease_expires_at > now())
       END AS in_flight,
       (SELECT count(*) FROM evaluation_queue q JOIN targets t ON t.id = q.target_id
        WHERE t.org_id = %(org_id)s) AS queue_depth,
       (SELECT count(*) FROM results r
        JOIN targets t ON t.id = r.target_id AND t.org_id = %(org_id)s
        WHERE r.org_id = %(org_id)s AND r.status = 'missed'
          AND r.scheduled_at >= now() - interval '5 minutes') AS dropped
FROM cur;

-- name: refresh_in_flight
-- The worker's snapshot of every org's checks in flight (0211): one pass of ``schedules``
-- (its live leases; ``lease_expires_at`` has no index, on purpose), joined to their targets
-- for the org. Writes only the orgs whose count moved, drops those with none left, and stamps
-- the time the counts are of (the statement's now(), the lease test's too).
WITH live AS (
    SELECT t.org_id, count(*)::int AS n
    FROM schedules s
    JOIN targets t ON t.id = s.target_id
    WHERE s.lease_expires_at > now()
    GROUP BY t.org_id
),
gone AS (
    DELETE FROM org_in_flight f
    WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.org_id = f.org_id)
    RETURNING 1
),
put AS (
    INSERT INTO org_in_flight AS f (org_id, n)
    SELECT l.org_id, l.n FROM live l
    ON CONFLICT (org_id) DO UPDATE SET n = EXCLUDED.n WHERE f.n <> EXCLUDED.n
    RETURNING 1
)
UPDATE in_flight_snapshot
SET taken_at = now()
WHERE id = 1
RETURNING taken_at, (SELECT count(*) FROM live) AS orgs,
          (SELECT count(*) FROM gone) + (SELECT count(*) FROM put) AS written;

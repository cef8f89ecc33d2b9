-- name: insert_heartbeat
-- Gives a heartbeat target its token (once: a target keeps its token across updates). The first
-- period starts now.
INSERT INTO heartbeats (id, org_id, token_prefix, token_hash, secrets, due_at)
SELECT t.id, t.org_id, %(prefix)s, %(hash)s, %(secrets)s,
       vigil_heartbeat_deadline(t.interval_secs, t.spec, now())
FROM targets t
WHERE t.org_id = %(org_id)s AND t.id = %(target_id)s
ON CONFLICT (id) DO NOTHING;

-- name: delete_heartbeat
-- A target that stopped being a heartbeat loses its token.
DELETE FROM heartbeats WHERE org_id = %(org_id)s AND id = %(target_id)s;

-- name: clear_regions
-- A heartbeat target is probed from no region (so no agent ever gets a slot of it).
DELETE FROM target_regions WHERE target_id = %(target_id)s;

-- name: endpoints
-- What reads of the org's heartbeat targets show.
SELECT id, secrets, due_at, last_ping_at, last_fail_at, last_start_at
FROM heartbeats
WHERE org_id = %(org_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: lock_by_prefix
-- The heartbeat a token names, held until the signal is recorded: signals of one target are
-- recorded one after the other, so their result times only ever increase.
SELECT id, org_id, token_hash
FROM heartbeats
WHERE token_prefix = %(prefix)s
FOR UPDATE;

-- name: record_start
UPDATE heartbeats SET last_start_at = clock_timestamp() WHERE id = %(target_id)s;

-- name: record_signal
-- A ping (``up``) or a reported failure (``down``) of a locked heartbeat: the result (when the
-- target is enabled; a paused target records nothing), its run duration when a start preceded it,
-- the next deadline, and the evaluation mark.
WITH clock AS MATERIALIZED (
    SELECT clock_timestamp() AS at
),
hb AS (
    SELECT h.id AS target_id, h.org_id, h.last_start_at, t.enabled, t.interval_secs, t.spec
    FROM heartbeats h JOIN targets t ON t.id = h.id
    WHERE h.id = %(target_id)s
),
stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, started_at,
                         finished_at, latency_ms, error, error_code, details)
    SELECT hb.target_id, %(region_id)s, clock.at, hb.org_id, %(status)s,
           coalesce(hb.last_start_at, clock.at), clock.at,
           (extract(epoch FROM clock.at - hb.last_start_at) * 1000)::real,
           %(error)s, %(error_code)s, %(details)s
    FROM hb, clock
    WHERE hb.enabled
    ON CONFLICT DO NOTHING
    RETURNING target_id
),
moved AS (
    UPDATE heartbeats h
    SET last_ping_at = CASE WHEN %(status)s::text = 'up' THEN clock.at ELSE h.last_ping_at END,
        last_fail_at = CASE WHEN %(status)s::text = 'down' THEN clock.at ELSE h.last_fail_at END,
        last_start_at = NULL,
        due_at = vigil_heartbeat_deadline(hb.interval_secs, hb.spec, clock.at)
    FROM hb, clock
    WHERE h.id = hb.target_id
    RETURNING h.id
),
marked AS (
    INSERT INTO evaluation_queue (target_id)
    SELECT target_id FROM stored
    ON CONFLICT (target_id) DO UPDATE SET dirty_at = clock_timestamp()
    RETURNING target_id
)
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM marked) AS marked;

-- name: sweep_overdue
-- Heartbeats of enabled targets whose deadline passed: one ``down`` result per missed period
-- (at each period's deadline, capped per sweep), the deadline moved to the first one still
-- ahead, the targets marked for evaluation. SKIP LOCKED: a signal being recorded wins.
WITH late AS (
    SELECT h.id AS target_id, h.org_id, h.due_at, t.interval_secs
    FROM heartbeats h JOIN targets t ON t.id = h.id
    WHERE h.due_at <= now() AND t.enabled AND t.kind = 'heartbeat'
    ORDER BY h.due_at
    LIMIT %(limit)s
    FOR UPDATE OF h SKIP LOCKED
),
periods AS (
    SELECT l.target_id, l.org_id, g.deadline
    FROM late l,
    LATERAL generate_series(
        l.due_at,
        least(now(), l.due_at + make_interval(secs => l.interval_secs * (%(max_periods)s - 1))),
        make_interval(secs => l.interval_secs)) AS g(deadline)
),
stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, finished_at, error,
                         error_code, details)
    SELECT target_id, %(region_id)s, deadline, org_id, 'down', deadline, %(error)s,
           %(error_code)s, %(details)s
    FROM periods
    ON CONFLICT DO NOTHING
    RETURNING target_id
),
moved AS (
    UPDATE heartbeats h
    SET due_at = l.due_at + make_interval(
            secs => l.interval_secs
                    * (floor(extract(epoch FROM now() - l.due_at) / l.interval_secs) + 1))
    FROM late l
    WHERE h.id = l.target_id
    RETURNING h.id
),
marked AS (
    INSERT INTO evaluation_queue (target_id)
    SELECT DISTINCT target_id FROM stored
    ON CONFLICT (target_id) DO UPDATE SET dirty_at = clock_timestamp()
    RETURNING target_id
)
SELECT (SELECT count(*) FROM stored) AS missed,
       (SELECT count(*) FROM moved) AS moved,
       (SELECT coalesce(array_agg(target_id), '{}') FROM marked) AS marked;

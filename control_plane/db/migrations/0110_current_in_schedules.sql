-- The current state of a target, kept by the ingest path instead of computed per read.
--
-- Each schedule row (one per target x region) holds the region's last result: the newest
-- check that ran (a ``missed`` placeholder or a throttled check never ran, so neither replaces
-- it; a late result for an older slot never overwrites a newer one). ingest_results writes
-- these columns in the UPDATE that already advances the schedule: no extra row write. They
-- carry no index, and the table keeps free room in every page, so the updates stay HOT when the
-- slot does not move (a late result) and find room on the page when it does.
ALTER TABLE schedules
    ADD COLUMN last_at timestamptz,
    ADD COLUMN last_status text,
    ADD COLUMN last_latency_ms real,
    ADD COLUMN last_status_code smallint,
    ADD COLUMN last_error text,
    ADD COLUMN last_error_code text;
ALTER TABLE schedules SET (fillfactor = 75);

-- What the regions reported so far, from the evaluation's state and one probe of the result.
UPDATE schedules s
SET last_at = r.scheduled_at, last_status = r.status, last_latency_ms = r.latency_ms,
    last_status_code = r.status_code, last_error = r.error, last_error_code = r.error_code
FROM region_states rs
JOIN results r ON r.target_id = rs.target_id AND r.region_id = rs.region_id
              AND r.scheduled_at = rs.last_reported_at
WHERE rs.target_id = s.target_id AND rs.region_id = s.region_id
  AND rs.last_reported_at IS NOT NULL;

-- The current state of every target, as target reads show it (status, last result, open
-- incident): ``target_status``; ``target_current`` adds the last 24 h.
--   status: paused (disabled) > the open incident's status > the worst region's last status
--           (down > error > degraded > up) > unknown (nothing reported yet).
-- A probed, enabled target reads its regions' last results from its schedule rows (an index
-- range of 1-3 rows, no probe of results). A heartbeat target (no schedules) and a paused one
-- (its schedules are gone while paused) read the evaluation's state (region_states) as before.
-- The last 24 h are the complete hours of the hourly rollups: one index range per target, so
-- ``target_current`` is for the rows of a page; choosing the page (a status filter or sort over
-- the whole org) reads ``target_status`` only.
DROP VIEW target_current;
CREATE VIEW target_status AS
SELECT t.id AS target_id,
       t.org_id,
       CASE
           WHEN NOT t.enabled THEN 'paused'
           WHEN i.id IS NOT NULL THEN
               CASE WHEN i.status IN ('down', 'error', 'degraded') THEN i.status ELSE 'down' END
           WHEN l.worst IS NULL THEN 'unknown'
           ELSE (ARRAY['down', 'error', 'degraded', 'up'])[l.worst]
       END AS current_status,
       l.region_id AS last_region,
       l.at AS last_checked_at,
       l.status AS last_result_status,
       l.error AS last_result_error,
       l.latency_ms AS last_latency_ms,
       i.id AS incident_id,
       i.started_at AS incident_started_at,
       i.status AS incident_status,
       i.state AS incident_state
FROM targets t
LEFT JOIN LATERAL (
    SELECT x.region_id, x.at, x.status, x.error, x.latency_ms,
           min(array_position(ARRAY['down', 'error', 'degraded', 'up'], x.status)) OVER ()
               AS worst
    FROM (
        SELECT s.region_id, s.last_at AS at, s.last_status AS status, s.last_error AS error,
               s.last_latency_ms::float8 AS latency_ms
        FROM schedules s
        WHERE s.target_id = t.id AND s.last_at IS NOT NULL
          AND t.enabled AND t.kind <> 'heartbeat'
        UNION ALL
        SELECT rs.region_id, rs.last_reported_at, rs.last_status, rs.last_error,
               (SELECT r.latency_ms FROM results r
                WHERE r.target_id = rs.target_id AND r.region_id = rs.region_id
                  AND r.scheduled_at = rs.last_reported_at)::float8
        FROM region_states rs
        WHERE rs.target_id = t.id AND rs.last_reported_at IS NOT NULL
          AND NOT (t.enabled AND t.kind <> 'heartbeat')
    ) x
    ORDER BY x.at DESC, x.region_id
    LIMIT 1
) l ON true
LEFT JOIN incidents i ON i.target_id = t.id AND i.ended_at IS NULL;

CREATE VIEW target_current AS
SELECT c.*, d.checks AS checks_24h, d.up AS up_24h
FROM target_status c
LEFT JOIN LATERAL (
    SELECT sum(h.total - h.missed)::bigint AS checks, sum(h.up + h.degraded)::bigint AS up
    FROM result_rollups_hourly h
    WHERE h.target_id = c.target_id AND h.hour >= now() - interval '24 hours'
) d ON true;

-- A paused target has no schedules: on resume its rows come back with the newest result of each
-- region that ran (one backward probe of the results' primary key), so it does not read
-- ``unknown`` until its next check. A new region, or a new target, has nothing to seed.
CREATE OR REPLACE FUNCTION vigil_schedule_target() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NOT NEW.enabled OR NEW.kind = 'heartbeat' THEN
        DELETE FROM schedules WHERE target_id = NEW.id;
    ELSIF NOT OLD.enabled OR OLD.kind = 'heartbeat' THEN
        INSERT INTO schedules (target_id, region_id, next_due_at, last_at, last_status,
                               last_latency_ms, last_status_code, last_error, last_error_code)
        SELECT NEW.id, r.region_id, vigil_next_slot(NEW.id, NEW.interval_secs, now()),
               l.scheduled_at, l.status, l.latency_ms, l.status_code, l.error, l.error_code
        FROM target_regions r
        LEFT JOIN LATERAL (
            SELECT x.scheduled_at, x.status, x.latency_ms, x.status_code, x.error, x.error_code
            FROM results x
            WHERE x.target_id = NEW.id AND x.region_id = r.region_id AND x.status <> 'missed'
              AND NOT (x.status = 'degraded' AND x.error_code IS NOT DISTINCT FROM 'THROTTLED')
            ORDER BY x.scheduled_at DESC
            LIMIT 1
        ) l ON true
        WHERE r.target_id = NEW.id
        ON CONFLICT DO NOTHING;
    ELSIF NEW.interval_secs <> OLD.interval_secs THEN
        UPDATE schedules SET next_due_at = vigil_next_slot(NEW.id, NEW.interval_secs, now())
        WHERE target_id = NEW.id AND lease_expires_at IS NULL;
    END IF;
    RETURN NEW;
END $$;

-- Every read's current status comes from the maintained ``target_state`` (0200), and the status
-- rules live in one place: ``vigil_target_status_of`` (0200), which the triggers keep
-- ``target_state`` by. Until now they were written three times: in ``target_status`` (0110,
-- per target, for every single read and list row), in ``org_target_status`` (0150, set-based,
-- for the list's sort by last check) and in ``vigil_target_status_of``.
--
-- ``target_status`` keeps its columns: the status is the target's ``target_state`` row (one
-- primary-key probe, no worst-of window over its regions); the last result and the open
-- incident are read as before.
--
-- ``org_target_status`` goes. What the list still needs set-based over the whole org is the
-- newest last check of each target (``sort=last_checked_at``): ``org_last_checked``, the same
-- grouped pass as before without the status (its filter is ``target_state``'s).
DROP VIEW target_current;
DROP VIEW target_status;
DROP FUNCTION org_target_status(uuid);

CREATE VIEW target_status AS
SELECT t.id AS target_id,
       t.org_id,
       ts.status AS current_status,
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
JOIN target_state ts ON ts.target_id = t.id
LEFT JOIN LATERAL (
    SELECT x.region_id, x.at, x.status, x.error, x.latency_ms
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
SELECT c.*, coalesce(d.checks, 0) AS checks_24h, coalesce(d.up, 0) AS up_24h
FROM target_status c
LEFT JOIN target_last_24h d ON d.target_id = c.target_id;

-- The newest last check of each of the org's targets that has one (a target never checked has
-- no row), read as ``target_status`` reads it: the schedules of a probed, enabled target, the
-- evaluation's region states of a heartbeat or paused one. One grouped pass over the org.
CREATE FUNCTION org_last_checked(org uuid)
RETURNS TABLE (target_id uuid, last_checked_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT s.target_id, max(s.last_at)
FROM targets p
JOIN schedules s ON s.target_id = p.id
WHERE p.org_id = org AND p.enabled AND p.kind <> 'heartbeat' AND s.last_at IS NOT NULL
GROUP BY s.target_id
UNION ALL
SELECT rs.target_id, max(rs.last_reported_at)
FROM targets p
JOIN region_states rs ON rs.target_id = p.id
WHERE p.org_id = org AND NOT (p.enabled AND p.kind <> 'heartbeat')
  AND rs.last_reported_at IS NOT NULL
GROUP BY rs.target_id
$$;

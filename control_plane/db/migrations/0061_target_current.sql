-- The current state of every target, as target reads show it (status, last result, last 24 h,
-- open incident). Built from what the evaluation already keeps (region_states: each region's
-- last conclusive result), the one open incident (incidents_one_open_idx) and the hourly
-- rollups (last_24h: complete hours): nothing is added to the ingest path. The last result's latency is one primary-key
-- probe of results (the region's last reported slot).
--   status: paused (disabled) > the open incident's status > the worst region's last status
--           (down > error > degraded > up) > unknown (nothing reported yet).
CREATE VIEW target_current AS
SELECT t.id AS target_id,
       t.org_id,
       CASE
           WHEN NOT t.enabled THEN 'paused'
           WHEN i.id IS NOT NULL THEN
               CASE WHEN i.status IN ('down', 'error', 'degraded') THEN i.status ELSE 'down' END
           WHEN w.worst IS NULL THEN 'unknown'
           ELSE w.worst
       END AS current_status,
       l.region_id AS last_region,
       l.last_reported_at AS last_checked_at,
       l.last_status AS last_result_status,
       l.last_error AS last_result_error,
       (SELECT r.latency_ms FROM results r
        WHERE r.target_id = t.id AND r.region_id = l.region_id
          AND r.scheduled_at = l.last_reported_at) AS last_latency_ms,
       (SELECT sum(h.total - h.missed) FROM result_rollups_hourly h
        WHERE h.target_id = t.id AND h.hour >= now() - interval '24 hours')::bigint AS checks_24h,
       (SELECT sum(h.up + h.degraded) FROM result_rollups_hourly h
        WHERE h.target_id = t.id AND h.hour >= now() - interval '24 hours')::bigint AS up_24h,
       i.id AS incident_id,
       i.started_at AS incident_started_at,
       i.status AS incident_status,
       i.state AS incident_state
FROM targets t
LEFT JOIN LATERAL (
    SELECT rs.region_id, rs.last_reported_at, rs.last_status, rs.last_error
    FROM region_states rs
    WHERE rs.target_id = t.id AND rs.last_reported_at IS NOT NULL
    ORDER BY rs.last_reported_at DESC, rs.region_id
    LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT rs.last_status AS worst
    FROM region_states rs
    WHERE rs.target_id = t.id AND rs.last_status IN ('down', 'error', 'degraded', 'up')
    ORDER BY array_position(ARRAY['down', 'error', 'degraded', 'up'], rs.last_status)
    LIMIT 1
) w ON true
LEFT JOIN incidents i ON i.target_id = t.id AND i.ended_at IS NULL;

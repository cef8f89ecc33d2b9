-- ``vigil_target_status_of`` (0200) found each target's open incident by a join on
-- ``incidents.ended_at IS NULL``. The statistics of a table whose incidents are nearly all closed
-- say a handful are open, so the planner read every open incident once and compared each of a
-- chunk's targets with all of them (a join filter). In a mass outage the open ones grow to
-- thousands long before the statistics follow: the trigger that keeps ``target_state`` (run by
-- the engine's incident opening and by ingest's failing batches) compared 250 targets with 3,275
-- open incidents (818,500 rows filtered, 125-190 ms per chunk) and, with 10,000 open, more.
-- Now each target probes ``incidents_one_open_idx`` for its own open incident (a LATERAL with a
-- LIMIT is never turned into that join): one index probe per target, however many are open.
CREATE OR REPLACE FUNCTION vigil_target_status_of(ids uuid[])
RETURNS TABLE(target_id uuid, org_id uuid, status text)
LANGUAGE sql STABLE AS $$
SELECT t.id, t.org_id,
       CASE
           WHEN NOT t.enabled THEN 'paused'
           WHEN i.id IS NOT NULL THEN
               CASE WHEN i.status IN ('down', 'error', 'degraded') THEN i.status ELSE 'down' END
           WHEN w.worst IS NULL THEN 'unknown'
           ELSE (ARRAY['down', 'error', 'degraded', 'up'])[w.worst]
       END
FROM targets t
LEFT JOIN LATERAL (
    -- At most one: incidents_one_open_idx is unique on the open ones.
    SELECT o.id, o.status FROM incidents o
    WHERE o.target_id = t.id AND o.ended_at IS NULL
    LIMIT 1
) i ON true
LEFT JOIN LATERAL (
    SELECT min(array_position(ARRAY['down', 'error', 'degraded', 'up'], x.st)) AS worst
    FROM (
        SELECT s.last_status AS st FROM schedules s
        WHERE s.target_id = t.id AND s.last_at IS NOT NULL
          AND t.enabled AND t.kind <> 'heartbeat'
        UNION ALL
        SELECT rs.last_status FROM region_states rs
        WHERE rs.target_id = t.id AND rs.last_reported_at IS NOT NULL
          AND NOT (t.enabled AND t.kind <> 'heartbeat')
    ) x
) w ON true
WHERE t.id = ANY (ids)
$$;

-- The current status of every target of one org, set-based: what ``target_status`` says of each
-- (same rules, same answers), computed with one grouped pass over the org's schedules (and the
-- region states of its heartbeat and paused targets) instead of the view's per-target LATERAL.
-- The list's ``sort=status`` / ``status=`` / ``sort=last_checked_at`` and the dashboard's
-- status counts read it: 60,000 targets cost one hash aggregate, not 60,000 view evaluations
-- (3.4 s). A plain SQL table function, inlined by the planner into the query that calls it.
--
-- The rules, as in target_status: paused when disabled; else the open incident's status (down
-- unless it is down, error or degraded); else the worst last status among the target's
-- regions (schedules for a probed target, region_states for a heartbeat; a status outside
-- down/error/degraded/up does not count); else unknown. ``last_checked_at`` is the newest of
-- those regions' last results (region_states also for a paused target, as the view reads).
CREATE FUNCTION org_target_status(org uuid)
RETURNS TABLE (target_id uuid, current_status text, last_checked_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT t.id,
       CASE
           WHEN NOT t.enabled THEN 'paused'
           WHEN i.id IS NOT NULL THEN
               CASE WHEN i.status IN ('down', 'error', 'degraded') THEN i.status ELSE 'down' END
           WHEN w.worst IS NULL THEN 'unknown'
           ELSE (ARRAY['down', 'error', 'degraded', 'up'])[w.worst]
       END,
       w.last_at
FROM targets t
LEFT JOIN incidents i ON i.target_id = t.id AND i.ended_at IS NULL
LEFT JOIN (
    SELECT s.target_id,
           min(array_position(ARRAY['down', 'error', 'degraded', 'up'], s.last_status)) AS worst,
           max(s.last_at) AS last_at
    FROM targets p
    JOIN schedules s ON s.target_id = p.id
    WHERE p.org_id = org AND p.enabled AND p.kind <> 'heartbeat' AND s.last_at IS NOT NULL
    GROUP BY s.target_id
    UNION ALL
    SELECT rs.target_id,
           min(array_position(ARRAY['down', 'error', 'degraded', 'up'], rs.last_status)),
           max(rs.last_reported_at)
    FROM targets p
    JOIN region_states rs ON rs.target_id = p.id
    WHERE p.org_id = org AND NOT (p.enabled AND p.kind <> 'heartbeat')
      AND rs.last_reported_at IS NOT NULL
    GROUP BY rs.target_id
) w ON w.target_id = t.id
WHERE t.org_id = org
$$;

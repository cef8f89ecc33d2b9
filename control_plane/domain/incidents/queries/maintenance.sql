-- Incidents and maintenance windows: the held mark (``in_maintenance``) and its release.

-- name: release_maintenance
-- Clear the mark of incidents no active window covers any more (the window ended, was cancelled,
-- or no longer lists the target). Their held notifications go out if the incident is still
-- open (``ended_at IS NULL``), else are dropped.
UPDATE incidents i
SET in_maintenance = false
WHERE i.in_maintenance
  AND NOT EXISTS (
      SELECT 1 FROM maintenance_windows w
      WHERE w.org_id = i.org_id AND w.starts_at <= now() AND w.ends_at > now()
        AND (w.all_targets OR EXISTS (SELECT 1 FROM maintenance_targets m
                                      WHERE m.window_id = w.id AND m.target_id = i.target_id)))
RETURNING i.id, i.target_id, i.ended_at;

-- name: changed_incidents
-- What the live stream says about incidents an evaluation just opened or closed.
SELECT id, org_id, target_id, status, state, started_at, ended_at, in_maintenance
FROM incidents
WHERE id = ANY(%(ids)s::uuid[]);

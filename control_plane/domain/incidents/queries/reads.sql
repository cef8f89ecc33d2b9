-- Reads of incidents, for one target or the whole org, and the lifecycle and narration writes.
-- ``states``/``statuses``/``severities``: NULL for no filter, else the values to keep.

-- name: incidents_page
-- Incidents overlapping [from, to), newest first; optionally one target, optionally ongoing only.
SELECT i.*, count(*) OVER () AS total
FROM incidents i
WHERE i.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL OR i.target_id = %(target_id)s)
  AND i.started_at < %(to)s
  AND (i.ended_at IS NULL OR i.ended_at >= %(from)s)
  AND (NOT %(ongoing_only)s OR i.ended_at IS NULL)
  AND (%(states)s::text[] IS NULL OR i.state = ANY(%(states)s::text[]))
  AND (%(statuses)s::text[] IS NULL OR i.status = ANY(%(statuses)s::text[]))
  AND (%(severities)s::text[] IS NULL OR coalesce(i.severity, CASE WHEN i.status = 'down'
       THEN 'critical' ELSE 'minor' END) = ANY(%(severities)s::text[]))
ORDER BY i.started_at DESC, i.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: incidents_count
SELECT count(*) AS total
FROM incidents i
WHERE i.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL OR i.target_id = %(target_id)s)
  AND i.started_at < %(to)s
  AND (i.ended_at IS NULL OR i.ended_at >= %(from)s)
  AND (NOT %(ongoing_only)s OR i.ended_at IS NULL)
  AND (%(states)s::text[] IS NULL OR i.state = ANY(%(states)s::text[]))
  AND (%(statuses)s::text[] IS NULL OR i.status = ANY(%(statuses)s::text[]))
  AND (%(severities)s::text[] IS NULL OR coalesce(i.severity, CASE WHEN i.status = 'down'
       THEN 'critical' ELSE 'minor' END) = ANY(%(severities)s::text[]));

-- name: get_incident
SELECT * FROM incidents WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: lock_incident
SELECT * FROM incidents WHERE org_id = %(org_id)s AND id = %(id)s FOR UPDATE;

-- name: updates_of
SELECT id, phase, message, created_at, created_by
FROM incident_updates
WHERE incident_id = %(id)s AND org_id = %(org_id)s
ORDER BY created_at, id;

-- name: acknowledge
UPDATE incidents
SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %(by)s,
    acknowledge_note = %(note)s
WHERE org_id = %(org_id)s AND id = %(id)s AND state = 'open';

-- name: resolve
-- A manual resolve leaves ``ended_at`` to the engine (see open_incident in engine.sql).
UPDATE incidents
SET state = 'resolved', resolved_at = now(), resolved_by = %(by)s, resolve_note = %(note)s
WHERE org_id = %(org_id)s AND id = %(id)s AND state <> 'resolved';

-- name: narrate
UPDATE incidents
SET public_title = CASE WHEN %(set_title)s THEN %(public_title)s ELSE public_title END,
    public_description = CASE WHEN %(set_description)s THEN %(public_description)s
                              ELSE public_description END,
    severity = CASE WHEN %(set_severity)s THEN %(severity)s ELSE severity END
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: add_update
INSERT INTO incident_updates (id, incident_id, org_id, phase, message, created_by)
VALUES (%(id)s, %(incident_id)s, %(org_id)s, %(phase)s, %(message)s, %(created_by)s);

-- Maintenance windows of one org. A window covers every target of the org (all_targets) or the
-- targets in maintenance_targets; it is active while starts_at <= now() < ends_at.

-- name: windows_page
-- ``status``: active, upcoming, past, or NULL for all; newest start first.
SELECT w.*,
       ARRAY(SELECT m.target_id FROM maintenance_targets m WHERE m.window_id = w.id
             ORDER BY m.target_id) AS target_ids,
       count(*) OVER () AS total
FROM maintenance_windows w
WHERE w.org_id = %(org_id)s
  AND (%(status)s::text IS NULL
       OR (%(status)s = 'active' AND w.starts_at <= now() AND w.ends_at > now())
       OR (%(status)s = 'upcoming' AND w.starts_at > now())
       OR (%(status)s = 'past' AND w.ends_at <= now()))
ORDER BY w.starts_at DESC, w.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: windows_count
SELECT count(*) AS total
FROM maintenance_windows w
WHERE w.org_id = %(org_id)s
  AND (%(status)s::text IS NULL
       OR (%(status)s = 'active' AND w.starts_at <= now() AND w.ends_at > now())
       OR (%(status)s = 'upcoming' AND w.starts_at > now())
       OR (%(status)s = 'past' AND w.ends_at <= now()));

-- name: get_window
SELECT w.*,
       ARRAY(SELECT m.target_id FROM maintenance_targets m WHERE m.window_id = w.id
             ORDER BY m.target_id) AS target_ids
FROM maintenance_windows w
WHERE w.org_id = %(org_id)s AND w.id = %(id)s;

-- name: lock_window
SELECT id, starts_at, ends_at, now() AS now
FROM maintenance_windows
WHERE org_id = %(org_id)s AND id = %(id)s
FOR UPDATE;

-- name: now
SELECT now() AS now;

-- name: org_targets
-- Which of these ids are targets of the org.
SELECT id FROM targets WHERE org_id = %(org_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: insert_window
INSERT INTO maintenance_windows (id, org_id, title, description, starts_at, ends_at, all_targets,
                                 write_source)
VALUES (%(id)s, %(org_id)s, %(title)s, %(description)s, %(starts_at)s, %(ends_at)s,
        %(all_targets)s, %(write_source)s);

-- name: update_window
UPDATE maintenance_windows
SET title = %(title)s, description = %(description)s, starts_at = %(starts_at)s,
    ends_at = %(ends_at)s, all_targets = %(all_targets)s, write_source = %(write_source)s,
    updated_at = now()
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: clear_targets
DELETE FROM maintenance_targets WHERE window_id = %(id)s;

-- name: add_targets
INSERT INTO maintenance_targets (window_id, target_id)
SELECT %(id)s, t FROM unnest(%(ids)s::uuid[]) AS t
ON CONFLICT DO NOTHING;

-- name: delete_window
DELETE FROM maintenance_windows WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: covering
-- The windows covering a target that overlap [from, to), as (start, end) pairs: what uptime
-- leaves out with exclude_maintenance=true.
SELECT greatest(w.starts_at, %(from)s) AS starts_at, least(w.ends_at, %(to)s) AS ends_at
FROM maintenance_windows w
WHERE w.org_id = %(org_id)s
  AND w.starts_at < %(to)s AND w.ends_at > %(from)s
  AND (w.all_targets OR EXISTS (SELECT 1 FROM maintenance_targets m
                                WHERE m.window_id = w.id AND m.target_id = %(target_id)s))
ORDER BY 1;

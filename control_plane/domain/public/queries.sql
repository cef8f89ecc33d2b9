-- The public surface's reads: a published page by slug, its curated components and what they
-- publish. Every query is bounded by the page's components (O(components)).

-- name: page_by_slug
SELECT id, org_id, name, slug, description, brand_color, custom_css, hide_branding,
       logo_updated_at, updated_at
FROM status_pages WHERE slug = %(slug)s AND published;

-- name: page_logo
SELECT logo, logo_content_type FROM status_pages
WHERE slug = %(slug)s AND published AND logo IS NOT NULL;

-- name: components
SELECT c.target_id, coalesce(c.public_name, t.name) AS name, c.public_description,
       c.public_group
FROM status_page_components c JOIN targets t ON t.id = c.target_id
WHERE c.page_id = %(page_id)s
ORDER BY c.sort_order, c.created_at, c.target_id;

-- name: open_incidents
-- Incidents still open (the engine has not closed them and nobody resolved them by hand).
SELECT id, target_id, status, severity, public_title, public_description, started_at,
       ended_at, state, resolved_at
FROM incidents
WHERE org_id = %(org_id)s AND target_id = ANY(%(ids)s::uuid[])
  AND ended_at IS NULL AND state <> 'resolved'
ORDER BY started_at DESC
LIMIT 100;

-- name: recent_incidents
SELECT id, target_id, status, severity, public_title, public_description, started_at,
       ended_at, state, resolved_at, count(*) OVER () AS total
FROM incidents
WHERE org_id = %(org_id)s AND target_id = ANY(%(ids)s::uuid[])
ORDER BY started_at DESC, id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: one_incident
SELECT id, target_id, status, severity, public_title, public_description, started_at,
       ended_at, state, resolved_at
FROM incidents
WHERE id = %(id)s AND org_id = %(org_id)s AND target_id = ANY(%(ids)s::uuid[]);

-- name: incident_updates
SELECT incident_id, phase, message, created_at
FROM incident_updates
WHERE incident_id = ANY(%(ids)s::uuid[])
ORDER BY created_at DESC, id;

-- name: maintenance
-- Active and upcoming windows that cover one of the page's components (or every target).
SELECT w.id, w.title, w.description, w.starts_at, w.ends_at, w.all_targets,
       ARRAY(SELECT mt.target_id FROM maintenance_targets mt
             WHERE mt.window_id = w.id AND mt.target_id = ANY(%(ids)s::uuid[])) AS target_ids
FROM maintenance_windows w
WHERE w.org_id = %(org_id)s AND w.ends_at > now()
  AND (w.all_targets OR EXISTS (
        SELECT 1 FROM maintenance_targets mt
        WHERE mt.window_id = w.id AND mt.target_id = ANY(%(ids)s::uuid[])))
ORDER BY w.starts_at, w.id
LIMIT 50;

-- name: daily_uptime
-- Per target and UTC day from %(from)s: settled hours from the hourly rollups, the hours after a
-- target's last hourly row from its minute rollups (never both for one hour).
WITH cut AS (
    SELECT t.id AS target_id,
           coalesce((SELECT max(h.hour) + interval '1 hour' FROM result_rollups_hourly h
                     WHERE h.target_id = t.id AND h.hour >= %(from)s), %(from)s) AS at
    FROM unnest(%(ids)s::uuid[]) AS t(id)
), src AS (
    SELECT h.target_id, h.hour AS at, h.up, h.down, h.degraded, h.error
    FROM result_rollups_hourly h JOIN cut c ON c.target_id = h.target_id
    WHERE h.org_id = %(org_id)s AND h.hour >= %(from)s AND h.hour < c.at
    UNION ALL
    SELECT m.target_id, m.minute, m.up, m.down, m.degraded, m.error
    FROM result_rollups m JOIN cut c ON c.target_id = m.target_id
    WHERE m.org_id = %(org_id)s AND m.minute >= c.at
)
SELECT target_id, (at AT TIME ZONE 'UTC')::date AS day,
       sum(up)::bigint AS up, sum(down)::bigint AS down, sum(degraded)::bigint AS degraded,
       sum(error)::bigint AS error
FROM src
GROUP BY 1, 2;

-- name: share_by_hash
SELECT s.id, s.org_id, s.target_id, t.name, t.kind
FROM monitor_shares s JOIN targets t ON t.id = s.target_id
WHERE s.token_hash = %(hash)s AND s.revoked_at IS NULL
  AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: latency_hours
-- A target's hourly latency over [from, now): settled hours from the hourly rollups, the rest
-- from minute rollups, folded per hour.
WITH src AS (
    SELECT hour AS at, samples, latency_p50, latency_p95
    FROM result_rollups_hourly
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s AND hour >= %(from)s
      AND samples > 0
    UNION ALL
    SELECT date_trunc('hour', minute), samples, latency_p50, latency_p95
    FROM result_rollups
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s AND samples > 0
      AND minute >= coalesce((SELECT max(hour) + interval '1 hour' FROM result_rollups_hourly
                              WHERE target_id = %(target_id)s AND hour >= %(from)s), %(from)s)
)
SELECT at, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_p50) AS p50,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_p95) AS p95
FROM src
GROUP BY at
ORDER BY at;

-- name: slug_by_host
SELECT slug FROM status_pages
WHERE custom_domain = %(host)s AND domain_verified_at IS NOT NULL AND published;

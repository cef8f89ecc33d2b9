-- The region catalog (operator) and who may use a region (access list and grants).

-- name: insert_region
-- Inserts nothing (and returns no row) when the id is taken.
INSERT INTO regions (id, name, location, enabled, allow_private_targets, access)
VALUES (%(id)s, %(name)s, %(location)s, %(enabled)s, %(allow_private_targets)s, %(access)s)
ON CONFLICT (id) DO NOTHING
RETURNING id, name, location, enabled, allow_private_targets, access, created_at, updated_at;

-- name: get_region
SELECT id, name, location, enabled, allow_private_targets, access, created_at, updated_at
FROM regions WHERE id = %(id)s;

-- name: lock_region
-- Holds the row for the rest of the transaction: new agents and target bindings of this region
-- (their foreign keys take a KEY SHARE lock on it) wait until the PATCH or DELETE is done.
SELECT id, name, location, enabled, allow_private_targets, access, created_at, updated_at
FROM regions WHERE id = %(id)s
FOR UPDATE;

-- name: list_regions
SELECT id, name, location, enabled, allow_private_targets, access, created_at, updated_at
FROM regions
ORDER BY id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_regions
SELECT count(*) AS total FROM regions;

-- name: list_org_regions
-- The catalog one org picks from: enabled regions that are public or granted to it, with whether
-- it may probe private addresses from each (the region's switch and its grant, or the
-- deployment-wide setting, ``allow_all_private``).
SELECT r.id, r.name, r.location,
       %(allow_all_private)s OR (r.allow_private_targets AND coalesce(g.allow_private_targets, false))
           AS allow_private_targets
FROM regions r
LEFT JOIN region_grants g ON g.region_id = r.id AND g.org_id = %(org_id)s
WHERE r.enabled AND (r.access = 'public' OR g.org_id IS NOT NULL)
ORDER BY r.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_org_regions
SELECT count(*) AS total
FROM regions r
LEFT JOIN region_grants g ON g.region_id = r.id AND g.org_id = %(org_id)s
WHERE r.enabled AND (r.access = 'public' OR g.org_id IS NOT NULL);

-- name: region_access
-- What an org may do with each of the given regions (absent ones are not returned): whether the
-- region is enabled, whether the org may see it (public, or granted), and whether it may probe
-- private addresses from it.
SELECT r.id, r.enabled,
       (r.access = 'public' OR g.org_id IS NOT NULL) AS visible,
       %(allow_all_private)s OR (r.allow_private_targets AND coalesce(g.allow_private_targets, false))
           AS allow_private
FROM regions r
LEFT JOIN region_grants g ON g.region_id = r.id AND g.org_id = %(org_id)s
WHERE r.id = ANY(%(ids)s::text[]);

-- name: update_region
-- Full replacement of the mutable columns; the service merges the PATCH first.
UPDATE regions
SET name = %(name)s, location = %(location)s, enabled = %(enabled)s,
    allow_private_targets = %(allow_private_targets)s, access = %(access)s, updated_at = now()
WHERE id = %(id)s
RETURNING id, name, location, enabled, allow_private_targets, access, created_at, updated_at;

-- name: drop_ungranted_targets
-- A region that became restricted (or an org whose grant was withdrawn, ``org_id`` set) stops
-- probing the targets of orgs without a grant: their bindings to it go, in the same
-- transaction, so no slot of theirs is leased there again.
DELETE FROM target_regions tr
USING targets t
WHERE tr.region_id = %(id)s
  AND t.id = tr.target_id
  AND (%(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s)
  AND NOT EXISTS (SELECT 1 FROM region_grants g
                  WHERE g.region_id = tr.region_id AND g.org_id = t.org_id)
RETURNING tr.target_id;

-- name: region_usage
-- What still references a region: targets probed from it and agents (revoked ones included)
-- registered in it.
SELECT (SELECT count(*) FROM target_regions WHERE region_id = %(id)s) AS targets,
       (SELECT count(*) FROM agents WHERE region_id = %(id)s) AS agents;

-- name: delete_region
DELETE FROM regions WHERE id = %(id)s RETURNING id;

-- name: list_grants
SELECT region_id, org_id, allow_private_targets, created_at, updated_at
FROM region_grants
WHERE region_id = %(id)s
ORDER BY org_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_grants
SELECT count(*) AS total FROM region_grants WHERE region_id = %(id)s;

-- name: upsert_grant
-- Fails on region_grants_org_id_fkey when the org does not exist.
INSERT INTO region_grants (region_id, org_id, allow_private_targets)
VALUES (%(id)s, %(org_id)s, %(allow_private_targets)s)
ON CONFLICT (region_id, org_id) DO UPDATE
SET allow_private_targets = EXCLUDED.allow_private_targets, updated_at = now()
RETURNING region_id, org_id, allow_private_targets, created_at, updated_at,
          (xmax = 0) AS created;

-- name: delete_grant
DELETE FROM region_grants WHERE region_id = %(id)s AND org_id = %(org_id)s RETURNING org_id;

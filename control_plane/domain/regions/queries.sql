-- name: insert_region
-- Inserts nothing (and returns no row) when the id is taken.
INSERT INTO regions (id, name, location, enabled, allow_private_targets)
VALUES (%(id)s, %(name)s, %(location)s, %(enabled)s, %(allow_private_targets)s)
ON CONFLICT (id) DO NOTHING
RETURNING id, name, location, enabled, allow_private_targets, created_at, updated_at;

-- name: get_region
SELECT id, name, location, enabled, allow_private_targets, created_at, updated_at
FROM regions WHERE id = %(id)s;

-- name: lock_region
-- Holds the row for the rest of the transaction: new agents and target bindings of this region
-- (their foreign keys take a KEY SHARE lock on it) wait until the PATCH or DELETE is done.
SELECT id, name, location, enabled, allow_private_targets, created_at, updated_at
FROM regions WHERE id = %(id)s
FOR UPDATE;

-- name: list_regions
SELECT id, name, location, enabled, allow_private_targets, created_at, updated_at
FROM regions
ORDER BY id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_regions
SELECT count(*) AS total FROM regions;

-- name: list_enabled_regions
-- The catalog tenants pick from.
SELECT id, name, location
FROM regions
WHERE enabled
ORDER BY id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_enabled_regions
SELECT count(*) AS total FROM regions WHERE enabled;

-- name: update_region
-- Full replacement of the mutable columns; the service merges the PATCH first.
UPDATE regions
SET name = %(name)s, location = %(location)s, enabled = %(enabled)s,
    allow_private_targets = %(allow_private_targets)s, updated_at = now()
WHERE id = %(id)s
RETURNING id, name, location, enabled, allow_private_targets, created_at, updated_at;

-- name: region_usage
-- What still references a region: targets probed from it and agents (revoked ones included)
-- registered in it.
SELECT (SELECT count(*) FROM target_regions WHERE region_id = %(id)s) AS targets,
       (SELECT count(*) FROM agents WHERE region_id = %(id)s) AS agents;

-- name: delete_region
DELETE FROM regions WHERE id = %(id)s RETURNING id;

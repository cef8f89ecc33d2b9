-- name: insert_agent
-- Fails on agents_region_fkey when the region does not exist.
INSERT INTO agents (id, region_id, name, prefix, hash)
VALUES (%(id)s, %(region_id)s, %(name)s, %(prefix)s, %(hash)s)
RETURNING id, name, region_id, created_at, last_seen_at, revoked_at, prefix;

-- name: get_agent
SELECT id, name, region_id, created_at, last_seen_at, revoked_at, prefix
FROM agents
WHERE id = %(id)s;

-- name: list_agents
-- ``region`` is optional: NULL matches every region. UUIDv7 ids order by creation.
SELECT id, name, region_id, created_at, last_seen_at, revoked_at, prefix
FROM agents
WHERE %(region)s::text IS NULL OR region_id = %(region)s
ORDER BY id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_agents
SELECT count(*) AS total
FROM agents
WHERE %(region)s::text IS NULL OR region_id = %(region)s;

-- name: rename_agent
UPDATE agents SET name = %(name)s WHERE id = %(id)s
RETURNING id, name, region_id, created_at, last_seen_at, revoked_at, prefix;

-- name: revoke_agent
-- Idempotent: revoking again keeps the first revocation time.
UPDATE agents SET revoked_at = coalesce(revoked_at, now()) WHERE id = %(id)s
RETURNING id, name, region_id, created_at, last_seen_at, revoked_at, prefix;

-- name: delete_agent
DELETE FROM agents WHERE id = %(id)s RETURNING id;

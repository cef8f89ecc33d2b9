-- name: insert_org
INSERT INTO orgs (id, name) VALUES (%(id)s, %(name)s);

-- name: insert_token
-- Inserts nothing (and returns no row) when the org does not exist.
INSERT INTO api_tokens (id, org_id, name, prefix, hash)
SELECT %(id)s, o.id, %(name)s, %(prefix)s, %(hash)s FROM orgs o WHERE o.id = %(org_id)s
RETURNING id;

-- name: list_orgs
SELECT id, name, created_at FROM orgs ORDER BY id;

-- name: insert_org
INSERT INTO orgs (id, name) VALUES (%(id)s, %(name)s);

-- name: insert_token
-- Inserts nothing (and returns no row) when the org does not exist.
INSERT INTO api_tokens (id, org_id, name, prefix, hash, permissions, last4)
SELECT %(id)s, o.id, %(name)s, %(prefix)s, %(hash)s, %(permissions)s, %(last4)s
FROM orgs o WHERE o.id = %(org_id)s
RETURNING id;

-- name: list_orgs
SELECT id, name, created_at FROM orgs ORDER BY id;

-- name: list_tokens
-- An org's API tokens, never their hashes; revoked ones too, for the record.
SELECT id, name, prefix, created_at, last_used_at, revoked_at
FROM api_tokens
WHERE org_id = %(org_id)s
ORDER BY created_at, id;

-- name: revoke_token
-- Idempotent: revoking again keeps the first revocation time. The next request with the token
-- is a 401 (authentication reads revoked_at on every request).
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = %(id)s
RETURNING id, org_id, name, prefix, revoked_at;

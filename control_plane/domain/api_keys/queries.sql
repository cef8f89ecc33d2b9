-- name: insert_key
INSERT INTO api_tokens (id, org_id, name, prefix, hash, permissions, scopes, expires_at,
                        created_by, created_by_user, last4)
VALUES (%(id)s, %(org_id)s, %(name)s, %(prefix)s, %(hash)s, %(permissions)s, %(scopes)s,
        %(expires_at)s, %(created_by)s, %(created_by_user)s, %(last4)s)
RETURNING id, name, prefix, last4, scopes, created_at, last_used_at, expires_at, revoked_at,
          created_by;

-- name: list_keys
-- The org's keys, newest first; revoked ones only when asked.
SELECT id, name, prefix, last4, scopes, created_at, last_used_at, expires_at, revoked_at,
       created_by, count(*) OVER () AS total
FROM api_tokens
WHERE org_id = %(org_id)s AND (%(include_revoked)s OR revoked_at IS NULL)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_keys
SELECT count(*) AS n FROM api_tokens
WHERE org_id = %(org_id)s AND (%(include_revoked)s OR revoked_at IS NULL);

-- name: get_key
-- A live key of the org (a revoked key is gone for reads; lists show it on request).
SELECT id, name, prefix, last4, scopes, created_at, last_used_at, expires_at, revoked_at,
       created_by
FROM api_tokens
WHERE id = %(id)s AND org_id = %(org_id)s AND revoked_at IS NULL;

-- name: revoke_key
UPDATE api_tokens SET revoked_at = now()
WHERE id = %(id)s AND org_id = %(org_id)s AND revoked_at IS NULL
RETURNING id, name, prefix, last4, scopes, created_at, last_used_at, expires_at, revoked_at,
          created_by;

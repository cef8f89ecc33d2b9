-- Share links of a monitor. "Live": not revoked and not expired.

-- name: count_target_shares
SELECT count(*) AS n FROM monitor_shares
WHERE target_id = %(target_id)s AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now());

-- name: count_shared_monitors
SELECT count(DISTINCT target_id) AS n FROM monitor_shares
WHERE org_id = %(org_id)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: insert_share
INSERT INTO monitor_shares (id, org_id, target_id, label, secrets, token_hash, expires_at)
VALUES (%(id)s, %(org_id)s, %(target_id)s, %(label)s, %(secrets)s, %(token_hash)s,
        %(expires_at)s)
RETURNING id, target_id, label, secrets, expires_at, created_at;

-- name: list_shares
SELECT id, target_id, label, secrets, expires_at, created_at FROM monitor_shares
WHERE org_id = %(org_id)s AND target_id = %(target_id)s AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at, id;

-- name: revoke_share
UPDATE monitor_shares SET revoked_at = now()
WHERE org_id = %(org_id)s AND target_id = %(target_id)s AND id = %(id)s AND revoked_at IS NULL
RETURNING id, label;

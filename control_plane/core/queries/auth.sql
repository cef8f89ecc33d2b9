-- name: api_token_by_prefix
-- A live API token and its org; ``stale`` says last_used_at is worth refreshing;
-- ``min_check_interval_secs`` is the org's floor (its plan, override or own setting).
SELECT t.id, t.org_id, t.hash, t.permissions, t.expires_at, l.min_check_interval_secs,
       (t.expires_at IS NOT NULL AND t.expires_at <= now()) AS expired,
       l.rate_api_writes, l.rate_api_reads, l.rate_bulk_ops, l.rate_test_now, l.rate_check_now,
       (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds') AS stale
FROM api_tokens t JOIN org_limits l ON l.org_id = t.org_id
WHERE t.prefix = %(prefix)s AND t.revoked_at IS NULL;

-- name: touch_api_token
UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s;

-- name: agent_by_prefix
-- A live (not revoked) agent. Agents of a disabled region still authenticate: operators bring
-- agents up before they open a region to tenants.
SELECT a.id, a.region_id, a.name, a.hash
FROM agents a
WHERE a.prefix = %(prefix)s AND a.revoked_at IS NULL;

-- name: touch_agent
-- At most once a second per agent: a busy agent calls many times a second, and liveness is
-- judged over tens of seconds (on-demand checks, the fleet view). No row write on the hot path.
UPDATE agents SET last_seen_at = now()
WHERE id = %(id)s AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 second');

-- name: session_by_hash
-- A live session, its user's role in the active org (NULL: not a member of it), and that
-- org's floor and rate budgets.
SELECT s.id, s.user_id, s.csrf_token, s.active_org_id AS org_id, m.role,
       l.min_check_interval_secs, l.rate_api_writes, l.rate_api_reads, l.rate_bulk_ops,
       l.rate_test_now, l.rate_check_now
FROM sessions s
LEFT JOIN memberships m ON m.user_id = s.user_id AND m.org_id = s.active_org_id
LEFT JOIN org_limits l ON l.org_id = s.active_org_id
WHERE s.token_hash = %(hash)s AND s.revoked_at IS NULL AND s.expires_at > now();

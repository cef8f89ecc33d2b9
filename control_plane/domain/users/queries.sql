-- name: insert_user
INSERT INTO users (id, email, name, password_hash)
VALUES (%(id)s, %(email)s, %(name)s, %(password_hash)s)
ON CONFLICT (email) DO NOTHING
RETURNING id;

-- name: user_by_email
SELECT id, email, name, password_hash FROM users WHERE email = %(email)s;

-- name: user_by_id
SELECT id, email, name FROM users WHERE id = %(id)s;

-- name: add_member
INSERT INTO memberships (org_id, user_id, role) VALUES (%(org_id)s, %(user_id)s, %(role)s)
ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role;

-- name: orgs_of_user
SELECT m.org_id, o.name, m.role
FROM memberships m JOIN orgs o ON o.id = m.org_id
WHERE m.user_id = %(user_id)s
ORDER BY m.created_at, m.org_id;

-- name: insert_session
INSERT INTO sessions (id, user_id, token_hash, csrf_token, active_org_id, expires_at)
VALUES (%(id)s, %(user_id)s, %(hash)s, %(csrf)s, %(org_id)s,
        now() + make_interval(days => %(days)s));

-- name: session_by_hash
SELECT id, user_id, csrf_token, active_org_id
FROM sessions
WHERE token_hash = %(hash)s AND revoked_at IS NULL AND expires_at > now();

-- name: revoke_session
UPDATE sessions SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL;

-- name: set_active_org
UPDATE sessions SET active_org_id = %(org_id)s WHERE id = %(id)s;

-- name: list_members
SELECT m.user_id, u.email, u.name, m.role, m.created_at, count(*) OVER () AS total
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.org_id = %(org_id)s
ORDER BY m.created_at, m.user_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: member
SELECT m.user_id, u.email, u.name, m.role, m.created_at
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.org_id = %(org_id)s AND m.user_id = %(user_id)s
FOR UPDATE OF m;

-- name: owners
SELECT count(*) AS n FROM memberships WHERE org_id = %(org_id)s AND role = 'OWNER';

-- name: set_role
UPDATE memberships SET role = %(role)s WHERE org_id = %(org_id)s AND user_id = %(user_id)s;

-- name: remove_member
DELETE FROM memberships WHERE org_id = %(org_id)s AND user_id = %(user_id)s;

-- name: lock_org
SELECT id FROM orgs WHERE id = %(org_id)s FOR UPDATE;

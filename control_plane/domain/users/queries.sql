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

-- name: pending_invitations
SELECT count(*) AS n FROM invitations
WHERE org_id = %(org_id)s AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now();

-- name: count_members
SELECT count(*) AS n FROM memberships WHERE org_id = %(org_id)s;

-- name: insert_invitation
INSERT INTO invitations (id, org_id, email, role, token_hash, expires_at)
VALUES (%(id)s, %(org_id)s, %(email)s, %(role)s, %(hash)s,
        now() + make_interval(days => %(days)s))
RETURNING id, email, role, created_at, expires_at;

-- name: list_invitations
SELECT id, email, role, created_at, expires_at, count(*) OVER () AS total
FROM invitations
WHERE org_id = %(org_id)s AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: revoke_invitation
UPDATE invitations SET revoked_at = now()
WHERE id = %(id)s AND org_id = %(org_id)s AND accepted_at IS NULL AND revoked_at IS NULL
RETURNING id, email, role, created_at, expires_at;

-- name: take_invitation
-- Single use: the first accept takes it.
UPDATE invitations SET accepted_at = now()
WHERE token_hash = %(hash)s AND accepted_at IS NULL AND revoked_at IS NULL
  AND expires_at > now()
RETURNING id, org_id, email, role;

-- name: insert_reset
INSERT INTO password_resets (id, user_id, token_hash, expires_at)
VALUES (%(id)s, %(user_id)s, %(hash)s, now() + interval '1 hour');

-- name: take_reset
UPDATE password_resets SET used_at = now()
WHERE token_hash = %(hash)s AND used_at IS NULL AND expires_at > now()
RETURNING user_id;

-- name: set_password
UPDATE users SET password_hash = %(password_hash)s, updated_at = now() WHERE id = %(id)s;

-- name: revoke_sessions
UPDATE sessions SET revoked_at = now() WHERE user_id = %(user_id)s AND revoked_at IS NULL;

-- name: list_plans
SELECT p.*, (SELECT count(*) FROM orgs o WHERE o.plan_id = p.id) AS orgs,
       count(*) OVER () AS total
FROM plans p ORDER BY p.id LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_plans
SELECT count(*) AS n FROM plans;

-- name: get_plan
SELECT p.*, (SELECT count(*) FROM orgs o WHERE o.plan_id = p.id) AS orgs
FROM plans p WHERE p.id = %(id)s;

-- name: lock_plan
SELECT id FROM plans WHERE id = %(id)s FOR UPDATE;

-- name: delete_plan
-- Only a plan no org is on (the FK refuses otherwise; checked first for a clear answer).
DELETE FROM plans p WHERE p.id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.plan_id = p.id)
RETURNING id;

-- name: org_exists
SELECT id FROM orgs WHERE id = %(org_id)s FOR UPDATE;

-- name: org_limits
SELECT * FROM org_limits WHERE org_id = %(org_id)s;

-- name: org_overrides
SELECT * FROM plan_overrides WHERE org_id = %(org_id)s;

-- name: set_org_plan
UPDATE orgs SET plan_id = %(plan_id)s WHERE id = %(org_id)s;

-- name: clear_overrides
DELETE FROM plan_overrides WHERE org_id = %(org_id)s;

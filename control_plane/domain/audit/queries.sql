-- name: page
-- The org's audit rows, newest first, with the filters that are set.
SELECT id, at, actor_type, actor_id, action, resource_type, resource_id, before, after,
       request_id, host(source_ip) AS source_ip, count(*) OVER () AS total
FROM audit_log
WHERE org_id = %(org_id)s
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s)
  AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)
  AND (%(actor_id)s::uuid IS NULL OR actor_id = %(actor_id)s)
  AND (%(start)s::timestamptz IS NULL OR at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR at < %(end)s)
ORDER BY at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count
SELECT count(*) AS n
FROM audit_log
WHERE org_id = %(org_id)s
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s)
  AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)
  AND (%(actor_id)s::uuid IS NULL OR actor_id = %(actor_id)s)
  AND (%(start)s::timestamptz IS NULL OR at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR at < %(end)s);

-- name: purge
-- Rows past the retention, a bounded batch at a time (the job loops).
DELETE FROM audit_log
WHERE id IN (SELECT id FROM audit_log WHERE at < now() - make_interval(days => %(days)s)
             LIMIT 10000);

-- name: operator_page
-- The operator's actions (plans, the deny-list, org plan assignments), newest first.
SELECT id, org_id, at, actor_type, actor_id, action, resource_type, resource_id, before, after,
       request_id, host(source_ip) AS source_ip, count(*) OVER () AS total
FROM audit_log
WHERE actor_type = 'operator'
  AND (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s)
  AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)
  AND (%(start)s::timestamptz IS NULL OR at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR at < %(end)s)
ORDER BY at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: operator_count
SELECT count(*) AS n
FROM audit_log
WHERE actor_type = 'operator'
  AND (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s)
  AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)
  AND (%(start)s::timestamptz IS NULL OR at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR at < %(end)s);

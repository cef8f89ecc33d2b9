-- On-demand checks, the tenant side: create jobs, wait for them, clean up. The agent side
-- (lease and ingest of these jobs) lives in monitoring.sql next to the ordinary slots.

-- name: target_for_check_now
-- The org's target with its regions; another org's target is simply not found.
SELECT t.id, t.kind, t.spec, t.regions
FROM target_details t
WHERE t.id = %(target_id)s AND t.org_id = %(org_id)s;

-- name: enabled_region
SELECT id FROM regions WHERE id = %(region_id)s AND enabled;

-- name: live_regions
-- Regions among %(regions)s served by an agent that is not revoked and called in recently (every
-- agent call, lease or ingest, stamps last_seen_at; an idle agent long-polls at most 30 s).
SELECT DISTINCT region_id
FROM agents
WHERE region_id = ANY(%(regions)s::text[])
  AND revoked_at IS NULL
  AND last_seen_at > now() - make_interval(secs => %(live_secs)s);

-- name: insert_job
-- scheduled_at is the request time, nudged off a whole second: grid slots are whole seconds, so
-- a check-now result can never take a grid slot's place in results.
INSERT INTO on_demand_checks (id, org_id, target_id, region_id, spec, secrets, timeout_ms,
                              scheduled_at, expires_at)
SELECT %(id)s, %(org_id)s, %(target_id)s, %(region_id)s, %(spec)s, %(secrets)s, %(timeout_ms)s,
       CASE WHEN date_trunc('second', n.at) = n.at THEN n.at + interval '1 microsecond'
            ELSE n.at END,
       n.at + make_interval(secs => %(wait_secs)s)
FROM (SELECT clock_timestamp() AS at) n;

-- name: wake_region
-- Wakes the lease long-polls of the region on every replica (see monitoring/wakeups.py).
SELECT pg_notify('vigil_on_demand', %(region_id)s);

-- name: job_states
SELECT id, region_id, state, result, scheduled_at FROM on_demand_checks WHERE id = ANY(%(ids)s::uuid[]);

-- name: delete_jobs
DELETE FROM on_demand_checks WHERE id = ANY(%(ids)s::uuid[]);

-- name: sweep_jobs
-- Jobs whose caller stopped waiting long ago (their late results have had time to arrive).
DELETE FROM on_demand_checks WHERE expires_at < now() - interval '10 minutes';

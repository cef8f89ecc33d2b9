-- On-demand checks (check-now, one-shot tests): the tenant side creates jobs and waits for
-- them; the agent side leases them ahead of the schedule's slots and completes them at ingest.

-- name: target_for_check_now
-- The org's target with its regions; another org's target is simply not found.
SELECT t.id, t.kind, t.spec, t.regions
FROM target_details t
WHERE t.id = %(target_id)s AND t.org_id = %(org_id)s;

-- name: live_regions
-- Regions among %(regions)s served by an agent that is not revoked and called in recently (every
-- agent call, lease or ingest, stamps last_seen_at; an idle agent long-polls at most 30 s).
SELECT DISTINCT region_id
FROM agents
WHERE region_id = ANY(%(regions)s::text[])
  AND revoked_at IS NULL
  AND last_seen_at > now() - make_interval(secs => %(live_secs)s);

-- name: insert_job
-- scheduled_at is the request time, nudged off a whole millisecond: grid slots are whole
-- milliseconds (0120), so a check-now result can never take a grid slot's place in results.
INSERT INTO on_demand_checks (id, org_id, target_id, region_id, spec, secrets, timeout_ms,
                              scheduled_at, expires_at)
SELECT %(id)s, %(org_id)s, %(target_id)s, %(region_id)s, %(spec)s, %(secrets)s, %(timeout_ms)s,
       CASE WHEN date_trunc('milliseconds', n.at) = n.at THEN n.at + interval '1 microsecond'
            ELSE n.at END,
       n.at + make_interval(secs => %(wait_secs)s)
FROM (SELECT clock_timestamp() AS at) n;

-- name: wake_region
-- Wakes the lease long-polls of the region on every replica (see agent_api/wakeups.py).
SELECT pg_notify('vigil_on_demand', %(region_id)s);

-- name: job_states
SELECT id, region_id, state, result, scheduled_at FROM on_demand_checks WHERE id = ANY(%(ids)s::uuid[]);

-- name: delete_jobs
DELETE FROM on_demand_checks WHERE id = ANY(%(ids)s::uuid[]);

-- name: sweep_jobs
-- Jobs whose caller stopped waiting long ago (their late results have had time to arrive).
DELETE FROM on_demand_checks WHERE expires_at < now() - interval '10 minutes';

-- The agent side.

-- name: lease_on_demand
-- On-demand jobs (check-now, /targets/test) of the region, oldest first, handed out before any
-- due slot. A job whose lease expired is leased again; a job past expires_at is left alone (its
-- caller has stopped waiting). A check-now job runs the target's stored spec and credentials;
-- a /test job carries its own, sealed with the job id as the binding (so the ``target_id`` of
-- its lease is the job id). As for the schedule's slots (agent_api/queries.sql, lease_due):
-- nothing goes to a revoked agent, and ``allow_private`` is the org's permission in the region.
WITH due AS (
    SELECT j.id, j.target_id, j.org_id
    FROM on_demand_checks j
    WHERE j.region_id = %(region_id)s
      AND j.state <> 'done'
      AND j.expires_at > now()
      AND (j.state = 'pending' OR j.lease_expires_at < now())
      AND EXISTS (SELECT 1 FROM agents a WHERE a.id = %(agent_id)s AND a.revoked_at IS NULL)
    ORDER BY j.created_at
    LIMIT %(max)s
    FOR UPDATE SKIP LOCKED
)
UPDATE on_demand_checks j
SET state = 'leased',
    leased_by = %(agent_id)s,
    lease_expires_at = now() + make_interval(secs => j.timeout_ms / 1000.0 + %(grace_secs)s)
FROM due
LEFT JOIN targets t ON t.id = due.target_id
JOIN regions r ON r.id = %(region_id)s
LEFT JOIN region_grants g ON g.region_id = r.id AND g.org_id = due.org_id
WHERE j.id = due.id
RETURNING j.id AS job_id, coalesce(j.target_id, j.id) AS target_id, j.region_id,
          j.scheduled_at, j.lease_expires_at AS expires_at, j.org_id,
          coalesce(t.kind, j.spec ->> 'type') AS kind, coalesce(t.spec, j.spec) AS spec,
          CASE WHEN j.target_id IS NULL THEN j.secrets ELSE t.secrets END AS secrets,
          coalesce(t.interval_secs, 60) AS interval_secs, now() AS server_time,
          r.allow_private_targets AND coalesce(g.allow_private_targets, false) AS allow_private;

-- name: complete_on_demand
-- Ingest of one on-demand result: the job is done once (a re-sent result is a duplicate); a
-- check-now result is also stored as a result of its target and region, at the job's
-- scheduled_at (off the grid). It is not marked for evaluation here: the next grid result marks
-- the target and the evaluator then reads it in time order, so a grid result still in flight
-- (older than the check-now) is never skipped by the evaluation watermark.
WITH job AS (
    UPDATE on_demand_checks
    SET state = 'done', result = %(result)s, leased_by = NULL, lease_expires_at = NULL
    WHERE id = %(job_id)s AND region_id = %(region_id)s AND state <> 'done'
    RETURNING org_id, target_id, scheduled_at
),
stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, agent_id, status,
                         started_at, finished_at, latency_ms, status_code, error, error_code,
                         dns_ms, connect_ms, tls_ms, ttfb_ms, details)
    SELECT job.target_id, %(region_id)s, job.scheduled_at, job.org_id, %(agent_id)s, %(status)s,
           %(started_at)s, %(finished_at)s, %(latency_ms)s, %(status_code)s, %(error)s,
           %(error_code)s, %(dns_ms)s, %(connect_ms)s, %(tls_ms)s, %(ttfb_ms)s, %(details)s
    FROM job
    WHERE job.target_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING target_id
)
SELECT (SELECT count(*) FROM job) AS done, (SELECT count(*) FROM stored) AS stored;

-- name: release_jobs
-- On-demand jobs this agent holds and has not started go back to pending for another agent.
UPDATE on_demand_checks
SET state = 'pending', leased_by = NULL, lease_expires_at = NULL
WHERE id = ANY(%(ids)s::uuid[]) AND region_id = %(region_id)s AND leased_by = %(agent_id)s
  AND state = 'leased'
RETURNING id;

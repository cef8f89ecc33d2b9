-- The incident engine (engine.py) evaluates a chunk of targets per
-- transaction: its arrays are passed as ``%(name)b``, binary parameters (no text quoting of
-- hundreds of elements per statement in the worker).

-- name: lock_targets
-- One evaluation in flight per target: whoever holds its transaction lock evaluates it. Takes
-- what it can of a whole chunk without waiting; the targets another worker holds are skipped
-- (their marks stay, so the sweep comes back to them).
SELECT u.id AS target_id
FROM unnest(%(ids)b::uuid[]) AS u(id)
WHERE pg_try_advisory_xact_lock(hashtextextended(u.id::text, 7331));

-- name: dirty_markers
SELECT target_id, dirty_at FROM evaluation_queue WHERE target_id = ANY(%(ids)b::uuid[]);

-- name: clear_markers
-- Cleared only if no result arrived while we evaluated (else the marker stays for the sweep).
-- A mark that ingest is re-stamping right now is locked: skipping it (rather than waiting on a
-- transaction that may wait on us) is right, its stamp is about to change anyway.
-- The locked rows are deleted by their addresses (a TID scan; they hold until the statement
-- ends), and the statement is planned each time (engine.py does not prepare it). Joined back to
-- ``evaluation_queue q`` by a prepared plan made while the queue was nearly empty, it scanned
-- every mark of ``q`` and, for each, every doomed one: in a mass outage 1,425 marks x 248
-- cleared, 142 ms of a 250-target chunk.
WITH doomed AS (
    SELECT e.ctid AS tid
    FROM evaluation_queue e
    JOIN unnest(%(ids)b::uuid[], %(dirty_at)b::timestamptz[]) AS m(target_id, dirty_at)
      ON e.target_id = m.target_id AND e.dirty_at = m.dirty_at
    FOR UPDATE OF e SKIP LOCKED
)
DELETE FROM evaluation_queue q WHERE q.ctid = ANY (ARRAY(SELECT tid FROM doomed));

-- name: targets_for_evaluation
-- A heartbeat target has no probe regions: its one source is the pseudo region 'heartbeat'.
SELECT t.id, t.org_id, t.alert_confirmations, t.region_policy, t.interval_secs,
       CASE WHEN t.kind = 'heartbeat' THEN ARRAY['heartbeat']
            ELSE ARRAY(SELECT r.region_id FROM target_regions r WHERE r.target_id = t.id
                       ORDER BY r.region_id) END AS regions
FROM targets t
WHERE t.id = ANY(%(ids)b::uuid[]);

-- name: region_states
-- Each region's state as the evaluation left it, with the steady ``up`` results ingest folded
-- since then (0170): while the state is a saturated ``up`` and the schedule row's ``steady_to``
-- is past its watermark, both watermarks are ``steady_to`` (those results change nothing else).
-- The next save of the region writes them back.
SELECT rs.target_id, rs.region_id, rs.consecutive_bad, rs.consecutive_good, rs.failing,
       rs.failing_since, rs.good_since, rs.failing_hard,
       CASE WHEN f.ahead THEN s.steady_to ELSE rs.evaluated_to END AS evaluated_to,
       CASE WHEN f.ahead THEN s.steady_to ELSE rs.last_reported_at END AS last_reported_at,
       rs.last_status, rs.last_error
FROM region_states rs
JOIN targets t ON t.id = rs.target_id
LEFT JOIN schedules s ON s.target_id = rs.target_id AND s.region_id = rs.region_id
CROSS JOIN LATERAL (
    SELECT coalesce(s.steady_to > coalesce(rs.evaluated_to, '-infinity')
                    AND vigil_region_steady(rs.last_status, rs.failing, rs.consecutive_bad,
                                            rs.consecutive_good, t.alert_confirmations),
                    false) AS ahead
) f
WHERE rs.target_id = ANY(%(ids)b::uuid[])
ORDER BY rs.target_id, rs.region_id;

-- name: new_results
-- Results past each (target, region) watermark, oldest first, at most ``limit`` per target (in
-- region, slot order). The caller passes every pair that can hold results: the regions with a
-- state (their watermark) and the assigned ones (NULL: from the start). Each pair is one range
-- scan of the primary key, pruned to the partitions past its watermark, so the cost follows the
-- new results, not the retained ones.
SELECT target_id, region_id, scheduled_at, status, error, error_code
FROM (
    SELECT p.target_id, n.region_id, n.scheduled_at, n.status, n.error, n.error_code,
           row_number() OVER (PARTITION BY p.target_id
                              ORDER BY n.region_id, n.scheduled_at) AS nth
    FROM unnest(%(target_ids)b::uuid[], %(region_ids)b::text[], %(after)b::timestamptz[])
         AS p(target_id, region_id, after)
    CROSS JOIN LATERAL (
        SELECT r.region_id, r.scheduled_at, r.status, r.error, r.error_code
        FROM results r
        WHERE r.target_id = p.target_id AND r.region_id = p.region_id
          AND r.scheduled_at > coalesce(p.after, '-infinity'::timestamptz)
          AND r.scheduled_at > now() - interval '7 days'
        ORDER BY r.scheduled_at
        LIMIT %(limit)s
    ) n
) x
WHERE nth <= %(limit)s
ORDER BY target_id, region_id, scheduled_at;

-- name: save_region_states
INSERT INTO region_states (target_id, region_id, consecutive_bad, consecutive_good, failing,
                           failing_since, good_since, failing_hard, evaluated_to,
                           last_reported_at, last_status, last_error)
SELECT *
FROM unnest(%(target_id)b::uuid[], %(region_id)b::text[], %(consecutive_bad)b::int[],
            %(consecutive_good)b::int[], %(failing)b::bool[], %(failing_since)b::timestamptz[],
            %(good_since)b::timestamptz[], %(failing_hard)b::bool[],
            %(evaluated_to)b::timestamptz[], %(last_reported_at)b::timestamptz[],
            %(last_status)b::text[], %(last_error)b::text[])
ON CONFLICT (target_id, region_id) DO UPDATE
SET consecutive_bad = EXCLUDED.consecutive_bad, consecutive_good = EXCLUDED.consecutive_good,
    failing = EXCLUDED.failing, failing_since = EXCLUDED.failing_since,
    good_since = EXCLUDED.good_since, failing_hard = EXCLUDED.failing_hard,
    evaluated_to = EXCLUDED.evaluated_to, last_reported_at = EXCLUDED.last_reported_at,
    last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error;

-- name: open_incidents_of
SELECT id, target_id, started_at, regions, status
FROM incidents
WHERE target_id = ANY(%(ids)b::uuid[]) AND ended_at IS NULL;

-- name: open_incidents
-- Every incident a chunk's evaluation opens, in one statement (``rows``: a JSON array, one object
-- per target). The partial unique index makes each succeed for one writer only: a target whose
-- incident another writer opened is not returned. An incident that opens while a maintenance
-- window of the org covers the target (all of the org's targets, or this one) is
-- ``in_maintenance``: its notifications are held until the maintenance sweep
-- (jobs.release_maintenance) clears the flag when no window covers the target any more.
--
-- No ping-pong after a manual resolve: a person resolving an incident whose target is still
-- failing sets its ``state`` to ``resolved`` but leaves ``ended_at`` to the engine, so the
-- incident stays the target's open one (this statement does nothing for it) until the target
-- recovers and close_incidents ends it; only a failure after that opens a new incident.
INSERT INTO incidents (id, org_id, target_id, started_at, status, cause, regions, check_count,
                       in_maintenance)
SELECT u.id, u.org_id, u.target_id, coalesce(u.started_at, now()), u.status, u.cause,
       u.regions, u.check_count,
       EXISTS (SELECT 1 FROM maintenance_windows w
               WHERE w.org_id = u.org_id AND w.ends_at > now() AND w.starts_at <= now()
                 AND (w.all_targets OR EXISTS (
                         SELECT 1 FROM maintenance_targets m
                         WHERE m.window_id = w.id AND m.target_id = u.target_id)))
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS u(id uuid, org_id uuid, target_id uuid, started_at timestamptz, status text, cause text,
          regions text[], check_count int)
ON CONFLICT (target_id) WHERE ended_at IS NULL DO NOTHING
RETURNING id, target_id;

-- name: extend_incidents
-- The open incidents that more failing results joined, in one statement. A ``degraded``
-- incident becomes ``down`` when a hard failure joins it; never the reverse.
UPDATE incidents i
SET regions = ARRAY(SELECT DISTINCT unnest(i.regions || u.regions) ORDER BY 1),
    status = CASE WHEN u.status = 'down' THEN 'down' ELSE i.status END,
    check_count = i.check_count + u.bad,
    cause = coalesce(u.cause, i.cause)
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS u(id uuid, regions text[], bad int, cause text, status text)
WHERE i.id = u.id AND i.ended_at IS NULL;

-- name: close_incidents
-- The end of the outage resolves the incident, unless a person resolved it already (then
-- ``resolved_at``/``resolved_by`` stay theirs: ``resolved_by IS NOT NULL`` tells the two apart).
-- Every incident a chunk's evaluation closes, in one statement.
UPDATE incidents i
SET ended_at = greatest(coalesce(u.ended_at, now()), i.started_at), closed_at = now(),
    state = 'resolved',
    resolved_at = coalesce(i.resolved_at, greatest(coalesce(u.ended_at, now()), i.started_at))
FROM unnest(%(ids)s::uuid[], %(ended_at)s::timestamptz[]) AS u(id, ended_at)
WHERE i.id = u.id AND i.ended_at IS NULL
RETURNING i.id;

-- name: stale_markers
SELECT target_id FROM evaluation_queue
WHERE dirty_at < clock_timestamp() - make_interval(secs => %(older_than_secs)s)
ORDER BY dirty_at
LIMIT %(limit)s;

-- name: lock_target_states
-- The maintained status rows (target_state) a chunk's writes may move, in id order (engine.py).
SELECT target_id FROM target_state WHERE target_id = ANY(%(ids)b::uuid[])
ORDER BY target_id FOR UPDATE;

-- name: lock_target
-- One evaluation in flight per target: whoever holds this transaction lock evaluates it.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(target_id)s::text, 7331)) AS locked;

-- name: dirty_marker
SELECT dirty_at FROM evaluation_queue WHERE target_id = %(target_id)s;

-- name: clear_marker
-- Cleared only if no result arrived while we evaluated (else the marker stays for the sweep).
DELETE FROM evaluation_queue WHERE target_id = %(target_id)s AND dirty_at = %(dirty_at)s;

-- name: target_for_evaluation
-- A heartbeat target has no probe regions: its one source is the pseudo region 'heartbeat'.
SELECT t.id, t.org_id, t.alert_confirmations, t.region_policy, t.interval_secs,
       CASE WHEN t.kind = 'heartbeat' THEN ARRAY['heartbeat']
            ELSE ARRAY(SELECT r.region_id FROM target_regions r WHERE r.target_id = t.id
                       ORDER BY r.region_id) END AS regions
FROM targets t
WHERE t.id = %(target_id)s;

-- name: region_states
SELECT region_id, consecutive_bad, consecutive_good, failing, failing_since, evaluated_to,
       last_reported_at, last_status, last_error
FROM region_states
WHERE target_id = %(target_id)s;

-- name: new_results
-- Results past each region's watermark, oldest first.
SELECT r.region_id, r.scheduled_at, r.status, r.error, r.error_code
FROM results r
LEFT JOIN region_states s ON s.target_id = r.target_id AND s.region_id = r.region_id
WHERE r.target_id = %(target_id)s
  AND r.scheduled_at > coalesce(s.evaluated_to, '-infinity'::timestamptz)
  AND r.scheduled_at > now() - interval '7 days'
ORDER BY r.region_id, r.scheduled_at
LIMIT %(limit)s;

-- name: save_region_state
INSERT INTO region_states (target_id, region_id, consecutive_bad, consecutive_good, failing,
                           failing_since, evaluated_to, last_reported_at, last_status, last_error)
VALUES (%(target_id)s, %(region_id)s, %(consecutive_bad)s, %(consecutive_good)s, %(failing)s,
        %(failing_since)s, %(evaluated_to)s, %(last_reported_at)s, %(last_status)s,
        %(last_error)s)
ON CONFLICT (target_id, region_id) DO UPDATE
SET consecutive_bad = EXCLUDED.consecutive_bad, consecutive_good = EXCLUDED.consecutive_good,
    failing = EXCLUDED.failing, failing_since = EXCLUDED.failing_since,
    evaluated_to = EXCLUDED.evaluated_to, last_reported_at = EXCLUDED.last_reported_at,
    last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error;

-- name: open_incident_of
SELECT id, started_at, regions FROM incidents WHERE target_id = %(target_id)s AND ended_at IS NULL;

-- name: open_incident
-- The partial unique index makes this succeed for one writer only.
INSERT INTO incidents (id, org_id, target_id, started_at, status, cause, regions, check_count)
VALUES (%(id)s, %(org_id)s, %(target_id)s, coalesce(%(started_at)s, now()), 'down', %(cause)s, %(regions)s,
        %(check_count)s)
ON CONFLICT (target_id) WHERE ended_at IS NULL DO NOTHING
RETURNING id;

-- name: extend_incident
UPDATE incidents
SET regions = ARRAY(SELECT DISTINCT unnest(regions || %(regions)s::text[]) ORDER BY 1),
    check_count = check_count + %(bad)s,
    cause = coalesce(%(cause)s, cause)
WHERE id = %(id)s AND ended_at IS NULL;

-- name: close_incident
UPDATE incidents
SET ended_at = greatest(coalesce(%(ended_at)s, now()), started_at), closed_at = now()
WHERE id = %(id)s AND ended_at IS NULL
RETURNING id;

-- name: stale_markers
SELECT target_id FROM evaluation_queue
WHERE dirty_at < clock_timestamp() - make_interval(secs => %(older_than_secs)s)
ORDER BY dirty_at
LIMIT %(limit)s;

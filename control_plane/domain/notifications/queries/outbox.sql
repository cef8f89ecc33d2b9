-- The delivery pipeline's statements (outbox.py writes, jobs.py delivers).

-- name: enqueue_open
-- In the engine's transaction that opened the incidents (and again each time it extends them;
-- a chunk's incidents in one statement): one row per enabled channel bound to the target, by its own ``alerts`` or by an enabled alert rule
-- that lists it or one of its tags and whose ``threshold`` (consecutive failing checks) the
-- incident's ``check_count`` reached (a channel bound both ways is told once). A row through a
-- rule carries the rule's severity (the highest, when several rules bind the channel).
INSERT INTO notifications (id, org_id, incident_id, channel_id, kind, severity)
SELECT gen_random_uuid(), i.org_id, i.id, c.id, 'open', ruled.severity
FROM incidents i
JOIN targets t ON t.id = i.target_id
JOIN channels c ON c.org_id = i.org_id AND c.enabled
LEFT JOIN LATERAL (
    SELECT (array_agg(r.severity ORDER BY array_position(ARRAY['critical', 'major', 'minor'],
                                                         r.severity)))[1] AS severity
    FROM alert_rules r
    JOIN alert_rule_channels rc ON rc.rule_id = r.id AND rc.channel_id = c.id
    WHERE r.org_id = i.org_id AND r.enabled AND i.check_count >= r.threshold
      AND (r.tags && t.tags
           OR EXISTS (SELECT 1 FROM alert_rule_targets rt
                      WHERE rt.rule_id = r.id AND rt.target_id = t.id))
) ruled ON true
WHERE i.id = ANY(%(incident_ids)s::uuid[]) AND i.state = 'open' AND i.ended_at IS NULL
  AND (EXISTS (SELECT 1 FROM target_alerts a WHERE a.target_id = t.id AND a.channel_id = c.id)
       OR ruled.severity IS NOT NULL)
ON CONFLICT (incident_id, channel_id, kind) WHERE kind <> 'reminder' DO NOTHING;

-- name: enqueue_recovery
-- In the engine's transaction that closed the incidents (a chunk's in one statement), when the
-- target announces recoveries: one row per enabled channel that was told of the open (or still
-- has it queued).
INSERT INTO notifications (id, org_id, incident_id, channel_id, kind)
SELECT gen_random_uuid(), i.org_id, i.id, c.id, 'recovery'
FROM incidents i
JOIN targets t ON t.id = i.target_id AND t.notify_recovery
JOIN channels c ON c.org_id = i.org_id AND c.enabled
WHERE i.id = ANY(%(incident_ids)s::uuid[])
  AND EXISTS (SELECT 1 FROM notifications o
              WHERE o.incident_id = i.id AND o.channel_id = c.id AND o.kind = 'open'
                AND o.state IN ('pending', 'delivered'))
ON CONFLICT (incident_id, channel_id, kind) WHERE kind <> 'reminder' DO NOTHING;

-- name: skip_closed_in_maintenance
-- An incident that closed while in maintenance, before its open went out: nothing is sent.
UPDATE notifications n SET state = 'skipped', lease_until = NULL,
       last_error = 'closed during maintenance'
FROM incidents i
WHERE n.incident_id = i.id AND n.state = 'pending' AND i.in_maintenance
  AND i.ended_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM notifications o
                  WHERE o.incident_id = n.incident_id AND o.channel_id = n.channel_id
                    AND o.kind = 'open' AND o.state = 'delivered');

-- name: skip_stale
-- Reminders of an incident no longer ``open`` (acknowledged, resolved by hand) or ended, and
-- anything for a disabled channel. Each part walks an index of what it can skip (the pending
-- rows of disabled channels, the pending reminders), not every pending row: a mass outage's
-- 10,000 queued opens were joined to their incidents every run (80-210 ms).
-- The ids are gathered first and the rows updated by them: joined to ``notifications n``, the
-- plan prepared while the table was nearly empty (one row estimated everywhere) scanned every
-- pending row of ``n`` and, for each, the pending rows again (a nested loop): 0.5-1 s a run
-- with a mass outage's 10,000 opens pending, 9.8 s with 20,000.
WITH doomed AS MATERIALIZED (
    SELECT p.id
    FROM channels c
    JOIN notifications p ON p.channel_id = c.id AND p.state = 'pending' AND p.kind <> 'event'
    WHERE NOT c.enabled
    UNION ALL
    SELECT p.id
    FROM notifications p
    JOIN incidents i ON i.id = p.incident_id
    JOIN channels c ON c.id = p.channel_id AND c.enabled
    WHERE p.state = 'pending' AND p.kind = 'reminder'
      AND (i.state <> 'open' OR i.ended_at IS NOT NULL)
)
UPDATE notifications n SET state = 'skipped', lease_until = NULL,
       last_error = CASE WHEN EXISTS (SELECT 1 FROM channels c
                                      WHERE c.id = n.channel_id AND NOT c.enabled)
                         THEN 'channel disabled' ELSE 'incident acknowledged or ended' END
WHERE n.id = ANY (ARRAY(SELECT id FROM doomed)) AND n.state = 'pending'
  AND (n.lease_until IS NULL OR n.lease_until < now());

-- name: enqueue_reminders
-- A reminder every renotify_interval_secs while the incident stays open and unacknowledged,
-- on each channel whose last open/reminder went out that long ago. Only incidents open that
-- long are looked at (their open went out after they opened): with 10,000 incidents just
-- opened by a mass outage, reading every one's notifications cost 0.4-0.5 s each run.
WITH candidates AS MATERIALIZED (
    SELECT i.id, i.org_id, t.renotify_interval_secs AS every
    FROM incidents i
    JOIN targets t ON t.id = i.target_id AND t.renotify_interval_secs > 0
    WHERE i.ended_at IS NULL AND i.state = 'open'
      AND i.opened_at <= now() - make_interval(secs => t.renotify_interval_secs)
)
INSERT INTO notifications (id, org_id, incident_id, channel_id, kind)
SELECT gen_random_uuid(), i.org_id, i.id, last.channel_id, 'reminder'
FROM candidates i
CROSS JOIN LATERAL (
    SELECT n.channel_id, max(n.delivered_at) AS sent
    FROM notifications n
    WHERE n.incident_id = i.id AND n.kind IN ('open', 'reminder')
    GROUP BY n.channel_id
    HAVING bool_and(n.state IN ('delivered', 'dead', 'skipped'))
       AND bool_or(n.kind = 'open' AND n.state = 'delivered')
) last
JOIN channels c ON c.id = last.channel_id AND c.enabled
WHERE last.sent <= now() - make_interval(secs => i.every);

-- name: claim
-- Due rows, leased to this worker, with everything a send needs (one round trip). Held: an
-- incident in maintenance while a window covering its target is active. Per (incident,
-- channel), rows go in order: one waits for the earlier (an ``open`` is always the first, so it
-- has none to wait for). A channel whose circuit is open waits too. A chat-style channel's opens
-- and recoveries wait until none of their kind came for ``hold`` seconds (while a storm of that
-- kind is being grouped: until the oldest pending one is ``followup`` seconds old; and never
-- longer than that), so the storm decision sees the whole burst; then all of them are claimed
-- together, by one claim (``burst``).
--
-- The walk follows notifications_claim_idx in due order and stops at ``limit`` rows: a batch
-- costs its own rows (and the held or leased ones it passes), not the whole queue.
WITH walk AS (
    SELECT n.ctid AS tid, n.id, n.channel_id, n.kind, c.kind = ANY(%(chat_kinds)s::text[]) AS chat
    FROM notifications n
    JOIN channels c ON c.id = n.channel_id
    JOIN incidents i ON i.id = n.incident_id
    WHERE n.state = 'pending' AND n.kind <> 'event' AND n.due_at <= now()
      AND (n.lease_until IS NULL OR n.lease_until < now())
      AND (c.circuit_open_until IS NULL OR c.circuit_open_until <= now())
      AND NOT (i.in_maintenance AND EXISTS (
            SELECT 1 FROM maintenance_windows w
            WHERE w.org_id = i.org_id AND now() >= w.starts_at AND now() < w.ends_at
              AND (w.all_targets OR EXISTS (SELECT 1 FROM maintenance_targets mt
                                            WHERE mt.window_id = w.id
                                              AND mt.target_id = i.target_id))))
      AND (n.kind = 'open' OR NOT EXISTS (
            SELECT 1 FROM notifications e
            WHERE e.incident_id = n.incident_id AND e.channel_id = n.channel_id
              AND e.state = 'pending' AND (e.created_at, e.id) < (n.created_at, n.id)))
      AND (n.kind NOT IN ('open', 'recovery') OR NOT (c.kind = ANY(%(chat_kinds)s::text[]))
           -- The oldest pending one waited ``followup`` seconds (no burst is held longer) ...
           OR (SELECT min(h.created_at) FROM notifications h
               WHERE h.channel_id = n.channel_id AND h.kind = n.kind AND h.state = 'pending'
                 AND h.kind <> 'event')
              <= now() - make_interval(secs => %(followup_secs)s)
           -- ... or, unless a storm of the kind is being grouped, the newest is ``hold`` seconds
           -- old: the burst stopped growing. Counting from the oldest split a burst whose
           -- incidents opened over longer than the hold: its first few went out one by one.
           OR ((SELECT max(h.created_at) FROM notifications h
                WHERE h.channel_id = n.channel_id AND h.kind = n.kind AND h.state = 'pending'
                  AND h.kind <> 'event')
                 <= now() - make_interval(secs => %(hold_secs)s)
               AND NOT EXISTS (SELECT 1 FROM notifications g
                               WHERE g.channel_id = n.channel_id AND g.kind = n.kind
                                 AND g.grouped AND g.state = 'delivered'
                                 AND g.delivered_at > now() - make_interval(
                                     secs => %(storm_window)s))))
      -- A chat-style channel is claimed by one claim at a time: two lanes (or workers)
      -- claiming together would each take part of a burst and send it as two messages. The
      -- lock lasts until this statement's transaction ends; by then the rows are leased.
      AND (NOT (c.kind = ANY(%(chat_kinds)s::text[]))
           OR pg_try_advisory_xact_lock(hashtextextended('vigil_chat_claim:' || n.channel_id, 0)))
    -- A channel's rows due together are claimed together (the index's order).
    ORDER BY n.due_at, n.channel_id
    LIMIT %(limit)s
    FOR UPDATE OF n SKIP LOCKED
), burst AS (
    -- The rest of a chat burst the walk reached (its rows are due together, however many rows
    -- of other channels lie between them in due order): the storm is grouped in one message.
    SELECT n.ctid AS tid
    FROM (SELECT DISTINCT channel_id, kind FROM walk
          WHERE chat AND kind IN ('open', 'recovery')) b
    JOIN notifications n ON n.channel_id = b.channel_id AND n.kind = b.kind
    WHERE n.state = 'pending' AND n.kind <> 'event' AND n.due_at <= now()
      AND (n.lease_until IS NULL OR n.lease_until < now())
      AND NOT (n.id IN (SELECT id FROM walk))
      AND NOT EXISTS (
            SELECT 1 FROM incidents i
            WHERE i.id = n.incident_id AND i.in_maintenance AND EXISTS (
                SELECT 1 FROM maintenance_windows w
                WHERE w.org_id = i.org_id AND now() >= w.starts_at AND now() < w.ends_at
                  AND (w.all_targets OR EXISTS (SELECT 1 FROM maintenance_targets mt
                                                WHERE mt.window_id = w.id
                                                  AND mt.target_id = i.target_id))))
      AND (n.kind = 'open' OR NOT EXISTS (
            SELECT 1 FROM notifications e
            WHERE e.incident_id = n.incident_id AND e.channel_id = n.channel_id
              AND e.state = 'pending' AND (e.created_at, e.id) < (n.created_at, n.id)))
    FOR UPDATE OF n SKIP LOCKED
), leased AS (
    UPDATE notifications n
    SET lease_until = now() + make_interval(secs => %(lease_secs)s), attempts = n.attempts + 1
    -- By their row addresses (a TID scan): the rows are locked by this statement, so the
    -- addresses hold until it ends.
    WHERE n.ctid = ANY(ARRAY(SELECT tid FROM walk UNION ALL SELECT tid FROM burst))
    RETURNING n.id, n.kind, n.attempts, n.created_at, n.org_id, n.channel_id, n.incident_id,
              n.severity
)
SELECT n.id, n.kind, n.attempts, n.created_at, n.org_id, n.channel_id, n.incident_id,
       c.name AS channel_name, c.kind AS channel_kind, c.config, c.secrets, c.verified_at,
       i.started_at, i.ended_at, i.status, i.cause, i.target_id,
       -- A person's severity on the incident, else the alert rule's of this channel's open.
       coalesce(i.severity, n.severity,
                (SELECT o.severity FROM notifications o
                 WHERE o.incident_id = n.incident_id AND o.channel_id = n.channel_id
                   AND o.kind = 'open')) AS severity,
       t.name AS target_name, t.kind AS target_kind,
       coalesce(t.spec ->> 'url', t.spec ->> 'host', t.spec ->> 'domain', t.name) AS address
FROM leased n
JOIN channels c ON c.id = n.channel_id
JOIN incidents i ON i.id = n.incident_id
JOIN targets t ON t.id = i.target_id
ORDER BY n.created_at, n.id;

-- name: recent_of_channel
-- How many notifications of a kind this channel was sent (or is sending) within the storm
-- window, besides the batch in hand: a storm spread over several runs stays grouped.
SELECT count(*) AS n
FROM notifications
WHERE channel_id = %(channel_id)s AND kind = %(kind)s
  AND created_at > now() - make_interval(secs => %(window)s)
  AND state IN ('pending', 'delivered')
  AND NOT (id = ANY(%(ids)s::uuid[]));

-- name: record_outcomes
-- A batch's attempts and its rows' new states in one statement (one round trip per batch):
-- parallel arrays, one element per attempt.
WITH d AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(outcomes)s::text[], %(status_codes)s::int[],
                         %(latencies)s::float8[], %(errors)s::text[], %(grouped)s::bool[],
                         %(delays)s::float8[])
        AS d(id, outcome, status_code, latency_ms, error, grouped, delay)
), attempts AS (
    INSERT INTO notification_attempts (notification_id, outcome, status_code, latency_ms, error)
    SELECT id, outcome, status_code, latency_ms, error FROM d
)
UPDATE notifications n
SET state = CASE d.outcome WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead'
                           ELSE n.state END,
    delivered_at = CASE WHEN d.outcome = 'delivered' THEN now() ELSE n.delivered_at END,
    lease_until = NULL,
    last_error = CASE WHEN d.outcome = 'delivered' THEN NULL ELSE d.error END,
    grouped = CASE WHEN d.outcome = 'delivered' THEN d.grouped ELSE n.grouped END,
    due_at = CASE WHEN d.outcome = 'retry' THEN now() + make_interval(secs => d.delay)
                  ELSE n.due_at END
FROM d
WHERE n.id = d.id;

-- name: channels_ok
UPDATE channels SET consecutive_failures = 0, circuit_open_until = NULL
WHERE id = ANY(%(ids)s::uuid[]) AND (consecutive_failures <> 0 OR circuit_open_until IS NOT NULL);

-- name: channels_failed
-- ``failures`` consecutive failed attempts more per channel; the circuit opens at the threshold.
UPDATE channels c
SET consecutive_failures = c.consecutive_failures + f.n,
    circuit_open_until = CASE WHEN c.consecutive_failures + f.n >= %(threshold)s
                              THEN now() + make_interval(secs => %(open_secs)s)
                              ELSE c.circuit_open_until END
FROM unnest(%(ids)s::uuid[], %(failures)s::int[]) AS f(id, n)
WHERE c.id = f.id;

-- name: gauges
SELECT
  (SELECT count(*) FROM notifications WHERE state = 'pending') AS depth,
  (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)
     FROM notifications WHERE state = 'pending') AS oldest,
  (SELECT count(*) FROM notifications WHERE state = 'dead') AS dead,
  (SELECT count(*) FROM channels WHERE circuit_open_until > now()) AS open_circuits;

-- The agent protocol: lease due slots, ingest results, record the slots nobody ran.

-- name: lease_due
-- Hands up to %(max)s due slots of one region to an agent. A slot is due when its time has come,
-- is not yet an interval old, and nobody holds a live lease on it (an expired lease is leased
-- again). SKIP LOCKED keeps two
-- agents of a region from ever taking the same slot. Nothing is handed to an agent revoked since
-- its request was authenticated (a long-poll may wait 30 s): the check is in the statement that
-- takes the slots. ``allow_private`` is this target's org's permission to probe private addresses
-- from the region: the region's switch and the org's grant (the deployment-wide setting is
-- added by the caller).
--
-- Overload sheds the oldest backlog first (issue 18). Slots due within the last
-- %(shed_secs)s seconds (``fresh``) go first, oldest first: in normal running that is every due
-- slot. Only the room left is filled from the older backlog, newest first, so when the region
-- cannot keep up the slots that are already hopelessly late sink to the sweep (recorded
-- ``missed`` an interval after their time) instead of making every later slot late too. The
-- fresh scan is an index range of a few seconds of ``schedules_due_idx``: it never walks the
-- backlog, and the backlog scan stops at its LIMIT (zero when the fresh slots filled the batch).
WITH fresh AS MATERIALIZED (
    SELECT s.ctid AS row_id, s.target_id, s.region_id
    FROM schedules s
    JOIN targets t ON t.id = s.target_id
    WHERE s.region_id = %(region_id)s
      AND s.next_due_at <= now()
      AND s.next_due_at > now() - make_interval(secs => %(shed_secs)s)
      -- A slot later than its own interval is never run: the sweep records it missed and
      -- moves the schedule to the present (no catch-up storm after an outage).
      AND s.next_due_at > now() - make_interval(secs => t.interval_secs)
      AND (s.lease_expires_at IS NULL OR s.lease_expires_at < now())
      AND EXISTS (SELECT 1 FROM agents a WHERE a.id = %(agent_id)s AND a.revoked_at IS NULL)
    ORDER BY s.next_due_at
    LIMIT %(max)s
    FOR UPDATE OF s SKIP LOCKED
),
backlog AS MATERIALIZED (
    SELECT s.ctid AS row_id, s.target_id, s.region_id
    FROM schedules s
    JOIN targets t ON t.id = s.target_id
    WHERE s.region_id = %(region_id)s
      AND s.next_due_at <= now() - make_interval(secs => %(shed_secs)s)
      AND s.next_due_at > now() - make_interval(secs => t.interval_secs)
      AND (s.lease_expires_at IS NULL OR s.lease_expires_at < now())
      AND EXISTS (SELECT 1 FROM agents a WHERE a.id = %(agent_id)s AND a.revoked_at IS NULL)
    ORDER BY s.next_due_at DESC
    LIMIT %(max)s - (SELECT count(*) FROM fresh)
    FOR UPDATE OF s SKIP LOCKED
),
due AS (
    -- Never more than %(max)s (fresh and backlog add up to it): the LIMIT tells the planner so.
    SELECT * FROM fresh UNION ALL SELECT * FROM backlog LIMIT %(max)s
)
UPDATE schedules s
SET leased_by = %(agent_id)s,
    lease_expires_at = now() + make_interval(
        secs => coalesce((t.spec ->> 'timeout')::int, 10000) / 1000.0 + %(grace_secs)s)
FROM due
JOIN targets t ON t.id = due.target_id
JOIN regions r ON r.id = due.region_id
LEFT JOIN region_grants g ON g.region_id = due.region_id AND g.org_id = t.org_id
-- By the locked row's ctid: a TID scan per slot. Joined on the key, the planner cannot know how
-- few slots ``due`` holds and hashes the whole table instead (100 ms for 90,000 schedules).
WHERE s.ctid = due.row_id
-- ``spec`` as JSON text and ``secrets`` NULL when there are none: a spec without secrets is decoded
-- straight into its struct (codec.open_check), not parsed into a dict by psycopg first.
RETURNING s.target_id, s.region_id, s.next_due_at AS scheduled_at, s.lease_expires_at AS expires_at,
          t.org_id, t.kind, t.spec::text AS spec, nullif(t.secrets, '{}') AS secrets,
          t.interval_secs, now() AS server_time,
          r.allow_private_targets AND coalesce(g.allow_private_targets, false) AS allow_private;

-- name: next_due_in_region
-- When the next free slot of a region falls due, for long-polling: an index scan that stops at
-- the first slot nobody holds (held leases that expire are caught by the poll step). ``live`` is
-- false once the agent is revoked: its waiting request ends with a 401.
SELECT (SELECT next_due_at FROM schedules
        WHERE region_id = %(region_id)s AND lease_expires_at IS NULL
        ORDER BY next_due_at LIMIT 1) AS next_at,
       now() AS now,
       EXISTS (SELECT 1 FROM agents a WHERE a.id = %(agent_id)s AND a.revoked_at IS NULL) AS live;

-- name: ingest_results
-- Stores a batch for one region, once per slot. Rows for targets not assigned to the region are
-- left out (the caller reports them rejected). A real result replaces a ``missed`` placeholder.
-- Each stored row advances its schedule to the next grid point, if that slot is still the one
-- due, and the newest becomes the region's last result (the schedule row's ``last_*`` columns,
-- what target reads show). A steady ``up`` is folded into the evaluation's state here (see
-- ``steady``); every other target is marked for evaluation. A steady check writes two rows here
-- (its result and its schedule row) and one at lease (the schedule row): three in all.
-- The batch arrives as one JSON array of row objects (``Row`` in ingest_rows.py): one
-- parameter that msgspec encodes in C, instead of 15 arrays that psycopg built element by element
-- in Python (half of the API's CPU per batch). Times are RFC 3339 with their offset; the figures
-- are float8, as the arrays were (the INSERT stores them as real). ``marked`` comes back as text:
-- the ids go straight into the evaluation job.
-- A result later than its minute's settling window (a spool drained after an outage) needs no
-- mark here: every rollup run reads what arrived since its previous one by ``received_at``,
-- whatever the slot's age, and a catch-up run does as much for the slots before its range
-- (rollups.py, "Late results").
WITH input AS (
    SELECT *
    FROM json_to_recordset(%(rows)s::json) AS i(
        idx int, target_id uuid, scheduled_at timestamptz, status text,
        started_at timestamptz, finished_at timestamptz, latency_ms float8,
        status_code smallint, error text, error_code text, dns_ms float8, connect_ms float8,
        tls_ms float8, ttfb_ms float8, details jsonb)
),
valid AS (
    SELECT i.*, t.org_id, t.interval_secs, t.alert_confirmations
    FROM input i
    JOIN target_regions tr ON tr.target_id = i.target_id AND tr.region_id = %(region_id)s
    JOIN targets t ON t.id = i.target_id
),
stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, agent_id, status,
                         started_at, finished_at, latency_ms, status_code, error, error_code,
                         dns_ms, connect_ms, tls_ms, ttfb_ms, details)
    SELECT target_id, %(region_id)s, scheduled_at, org_id, %(agent_id)s, status, started_at,
           finished_at, latency_ms, status_code, error, error_code, dns_ms, connect_ms, tls_ms,
           ttfb_ms, details
    FROM valid
    ON CONFLICT (target_id, region_id, scheduled_at) DO UPDATE
        SET agent_id = EXCLUDED.agent_id, status = EXCLUDED.status,
            started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
            latency_ms = EXCLUDED.latency_ms, status_code = EXCLUDED.status_code,
            error = EXCLUDED.error, error_code = EXCLUDED.error_code, dns_ms = EXCLUDED.dns_ms,
            connect_ms = EXCLUDED.connect_ms, tls_ms = EXCLUDED.tls_ms,
            ttfb_ms = EXCLUDED.ttfb_ms, details = EXCLUDED.details, received_at = now()
        WHERE results.status = 'missed'
    RETURNING target_id, scheduled_at
),
slots AS (
    -- Per target of the batch: its stored slots (one of them may be the one due), and the
    -- newest stored check that ran (as ``newest``; ``nw_*``), in the same pass: joined to
    -- ``newest``, the planner expected one row of each and rescanned ``newest`` once per row.
    SELECT st.target_id, array_agg(st.scheduled_at) AS stored_at, count(*) AS n,
           max(v.interval_secs) AS interval_secs,
           max(v.scheduled_at) FILTER (WHERE r.ran) AS nw_at,
           (array_agg(v.status ORDER BY v.scheduled_at DESC) FILTER (WHERE r.ran))[1]
               AS nw_status,
           (array_agg(v.latency_ms ORDER BY v.scheduled_at DESC) FILTER (WHERE r.ran))[1]
               AS nw_latency_ms,
           (array_agg(v.status_code ORDER BY v.scheduled_at DESC) FILTER (WHERE r.ran))[1]
               AS nw_status_code,
           (array_agg(v.error ORDER BY v.scheduled_at DESC) FILTER (WHERE r.ran))[1] AS nw_error,
           (array_agg(v.error_code ORDER BY v.scheduled_at DESC) FILTER (WHERE r.ran))[1]
               AS nw_error_code
    FROM stored st JOIN valid v ON v.target_id = st.target_id AND v.scheduled_at = st.scheduled_at
    CROSS JOIN LATERAL (
        SELECT v.status <> 'missed'
               AND NOT (v.status = 'degraded' AND v.error_code IS NOT DISTINCT FROM 'THROTTLED')
               AS ran
    ) r
    GROUP BY st.target_id
),
newest AS (
    -- Per target: the newest stored check that ran (a ``missed`` placeholder or a check the
    -- agent's throttle held back never ran: neither is a last result).
    -- ``n``: how many rows of the target were stored (as ``slots``, for ``steady``: joined to
    -- ``slots`` there, the planner expected one row of each and rescanned one per row of the
    -- other).
    SELECT DISTINCT ON (x.target_id) x.*
    FROM (
        SELECT v.target_id, v.scheduled_at, v.status, v.latency_ms, v.status_code, v.error,
               v.error_code, v.alert_confirmations, count(*) OVER (PARTITION BY v.target_id) AS n
        FROM stored st
        JOIN valid v ON v.target_id = st.target_id AND v.scheduled_at = st.scheduled_at
    ) x
    WHERE x.status <> 'missed'
      AND NOT (x.status = 'degraded' AND x.error_code IS NOT DISTINCT FROM 'THROTTLED')
    ORDER BY x.target_id, x.scheduled_at DESC
),
steady AS (
    -- The results that cannot change anything the evaluation decides: the region's previous
    -- result (the evaluation's watermark ``w``: nothing unevaluated lies between) was ``up`` on a
    -- region neither failing nor on a bad run, the new one is ``up`` too, and the target has no
    -- open incident. Their evaluation is done here, exactly as the engine folds an ``up``
    -- (engine.py: consecutive_good + 1 up to the confirmations, watermark and last report move to
    -- the slot), instead of a round trip through the queue. One stored row per target only.
    --
    -- ``saturated``: the good run is at the confirmations already, so the fold moves only the
    -- watermarks, and they go to the schedule row's ``steady_to`` (written anyway, below) instead
    -- of a fourth row write (0170; ``w`` is the effective watermark that migration describes).
    -- Otherwise (the first ups of a good run) the region state row is written as before; one the
    -- engine holds right now is skipped (not waited for) and goes the usual way.
    SELECT n.target_id, n.scheduled_at, w.sat AS saturated, wm.at AS watermark
    FROM newest n
    JOIN region_states rs ON rs.target_id = n.target_id AND rs.region_id = %(region_id)s
    LEFT JOIN schedules s ON s.target_id = n.target_id AND s.region_id = %(region_id)s
    CROSS JOIN LATERAL (
        SELECT vigil_region_steady(rs.last_status, rs.failing, rs.consecutive_bad,
                                   rs.consecutive_good, n.alert_confirmations) AS sat
    ) w
    CROSS JOIN LATERAL (
        SELECT CASE WHEN w.sat AND s.steady_to > coalesce(rs.evaluated_to, '-infinity')
                    THEN s.steady_to ELSE rs.evaluated_to END AS at
    ) wm
    -- The two probes stay subplans (an index probe each per row): pulled up into anti joins,
    -- the planner, which expects one row from these CTEs, probed results by region and time
    -- only and filtered on the target (0.6 ms a row).
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM results r
                       WHERE r.target_id = n.target_id AND r.region_id = %(region_id)s
                         AND r.scheduled_at > wm.at AND r.scheduled_at < n.scheduled_at)
               OR EXISTS (SELECT 1 FROM incidents i
                          WHERE i.target_id = n.target_id AND i.ended_at IS NULL) AS blocked
    ) b
    WHERE n.n = 1 AND n.status = 'up' AND rs.last_status = 'up' AND NOT rs.failing
      AND rs.consecutive_bad = 0 AND rs.consecutive_good > 0
      AND wm.at < n.scheduled_at
      AND NOT b.blocked
),
unsaturated AS (
    -- The state is checked again on the locked row: an evaluation that committed since the
    -- statement began leaves the result to the queue.
    SELECT sd.target_id, sd.scheduled_at
    FROM steady sd
    JOIN region_states rs ON rs.target_id = sd.target_id AND rs.region_id = %(region_id)s
    WHERE NOT sd.saturated
      AND rs.last_status = 'up' AND NOT rs.failing AND rs.consecutive_bad = 0
      AND rs.consecutive_good > 0 AND rs.evaluated_to = sd.watermark
    FOR UPDATE OF rs SKIP LOCKED
),
folded AS (
    UPDATE region_states rs
    SET consecutive_good = rs.consecutive_good + 1, evaluated_to = us.scheduled_at,
        last_reported_at = us.scheduled_at
    FROM unsaturated us
    WHERE rs.target_id = us.target_id AND rs.region_id = %(region_id)s
    RETURNING rs.target_id
),
done AS (
    -- Evaluated here: no mark. As arrays (one row): joined as CTEs, the planner expected one row
    -- and rescanned them once per row of the batch.
    SELECT coalesce(array_agg(target_id) FILTER (WHERE saturated), '{}') AS on_schedule,
           coalesce(array_agg(target_id) FILTER (WHERE saturated), '{}')
               || (SELECT coalesce(array_agg(target_id), '{}') FROM unsaturated) AS ids
    FROM steady
),
advanced AS (
    -- One UPDATE per schedule row: it advances to the next grid point if a stored slot is the
    -- one due, keeps the newest result as the region's last one if it is newer than the one
    -- the row holds (a spooled result for an older slot never overwrites a newer one), and
    -- holds a saturated steady fold's watermark (``steady_to``, never moved back).
    UPDATE schedules s
    SET next_due_at = CASE WHEN s.next_due_at = ANY (sl.stored_at)
                           THEN vigil_next_slot(s.target_id, sl.interval_secs,
                                                s.next_due_at + interval '1 millisecond')
                           ELSE s.next_due_at END,
        leased_by = CASE WHEN s.next_due_at = ANY (sl.stored_at) THEN NULL ELSE s.leased_by END,
        lease_expires_at = CASE WHEN s.next_due_at = ANY (sl.stored_at) THEN NULL
                                ELSE s.lease_expires_at END,
        last_at = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                       THEN sl.nw_at ELSE s.last_at END,
        last_status = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                           THEN sl.nw_status ELSE s.last_status END,
        last_latency_ms = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                               THEN sl.nw_latency_ms ELSE s.last_latency_ms END,
        last_status_code = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                                THEN sl.nw_status_code ELSE s.last_status_code END,
        last_error = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                          THEN sl.nw_error ELSE s.last_error END,
        last_error_code = CASE WHEN sl.nw_at > coalesce(s.last_at, '-infinity')
                               THEN sl.nw_error_code ELSE s.last_error_code END,
        -- A steady fold's slot is the target's newest stored one.
        steady_to = CASE WHEN s.target_id = ANY (dn.on_schedule)
                         THEN greatest(s.steady_to, sl.nw_at) ELSE s.steady_to END
    FROM done dn, slots sl
    WHERE s.target_id = sl.target_id AND s.region_id = %(region_id)s
      AND (s.next_due_at = ANY (sl.stored_at)
           OR sl.nw_at > coalesce(s.last_at, '-infinity')
           OR s.target_id = ANY (dn.on_schedule))
    RETURNING s.target_id
),
marked AS (
    INSERT INTO evaluation_queue (target_id)
    SELECT sl.target_id FROM slots sl, done dn
    WHERE sl.target_id <> ALL (dn.ids)
    ON CONFLICT (target_id) DO UPDATE SET dirty_at = clock_timestamp()
    RETURNING target_id
)
SELECT (SELECT coalesce(array_agg(idx), '{}') FROM valid) AS valid_idx,
       (SELECT coalesce(array_agg(v.idx), '{}')
        FROM stored st JOIN valid v
          ON v.target_id = st.target_id AND v.scheduled_at = st.scheduled_at) AS stored_idx,
       (SELECT count(*) FROM advanced) AS advanced,
       (SELECT count(*) FROM folded) AS folded,
       (SELECT coalesce(array_agg(target_id::text), '{}') FROM marked) AS marked;

-- name: record_unavailable
-- A slot whose secrets cannot be opened (unknown key id): fail closed with an ``error`` result
-- instead of handing a broken spec to an agent, and move the schedule on.
WITH stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, started_at,
                         finished_at, error, error_code)
    VALUES (%(target_id)s, %(region_id)s, %(scheduled_at)s, %(org_id)s, 'error', now(), now(),
            %(error)s, %(error_code)s)
    ON CONFLICT DO NOTHING
    RETURNING target_id
)
UPDATE schedules s
SET next_due_at = vigil_next_slot(s.target_id, %(interval_secs)s,
                                  %(scheduled_at)s + interval '1 millisecond'),
    leased_by = NULL, lease_expires_at = NULL,
    last_at = %(scheduled_at)s, last_status = 'error', last_latency_ms = NULL,
    last_status_code = NULL, last_error = %(error)s, last_error_code = %(error_code)s
WHERE s.target_id = %(target_id)s AND s.region_id = %(region_id)s
  AND s.next_due_at = %(scheduled_at)s;

-- name: sweep_missed
-- Slots nobody ran by scheduled_at + interval become ``missed`` results (every skipped grid
-- point, capped), and the schedule jumps to the slot that is current now. Held live leases are
-- left alone: their agent may still answer.
--
-- Bounded per statement (issue 18), so that an overloaded system is not slowed further by its
-- own bookkeeping: at most %(limit)s schedules, and placeholders for at most about %(budget)s
-- slots (the schedules past the budget, oldest first, stay locked until the commit and are left
-- for the next statement or sweep; the first one is always taken). All of it set-based: one
-- INSERT of every placeholder and one UPDATE of every schedule. ``candidates`` tells the caller
-- whether there may be more.
--
-- Cheap when behind: the scan of ``schedules_overdue_idx`` ends at the shortest interval of any
-- target ago (read through ``targets_interval_idx``, 0240), not at 10 s ago: a system running
-- behind holds a backlog of due slots that are not missed yet, which the scan used to walk
-- whole (with a probe of targets each) every second to skip them. Each candidate's target is
-- one index probe (the LATERAL's OFFSET 0 keeps it a nested loop in index order, so the LIMIT
-- stops the scan: joined, the planner hashed all of targets), and the UPDATE takes its rows
-- by TID (``ctid = ANY``), never by a scan of the table whatever the planner expects of ``late``.
WITH cand AS MATERIALIZED (
    SELECT s.ctid AS row_id, s.target_id, s.region_id, s.next_due_at, t.interval_secs, t.org_id
    FROM schedules s
    CROSS JOIN LATERAL (SELECT t.interval_secs, t.org_id FROM targets t WHERE t.id = s.target_id
                        OFFSET 0) t
    WHERE s.next_due_at <= now() - make_interval(secs => (SELECT min(interval_secs) FROM targets))
      AND s.next_due_at + make_interval(secs => t.interval_secs) <= now()
      AND (s.lease_expires_at IS NULL OR s.lease_expires_at < now())
    ORDER BY s.next_due_at
    LIMIT %(limit)s
    FOR UPDATE OF s SKIP LOCKED
),
counted AS (
    SELECT c.*, sum(c.n) OVER (ORDER BY c.next_due_at, c.target_id, c.region_id) AS running
    FROM (SELECT cand.*,
                 least(%(max_slots)s::bigint,
                       floor(extract(epoch FROM now() - cand.next_due_at)
                             / cand.interval_secs)::bigint) AS n
          FROM cand) c
),
late AS MATERIALIZED (
    SELECT row_id, target_id, region_id, next_due_at, interval_secs, org_id
    FROM counted
    WHERE running - n < %(budget)s
),
slots AS (
    SELECT l.target_id, l.region_id, l.org_id, g.slot
    FROM late l,
    LATERAL generate_series(
        l.next_due_at,
        least(now() - make_interval(secs => l.interval_secs),
              l.next_due_at + make_interval(secs => l.interval_secs * (%(max_slots)s - 1))),
        make_interval(secs => l.interval_secs)) AS g(slot)
),
stored AS (
    INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, error, error_code)
    SELECT target_id, region_id, slot, org_id, 'missed',
           'no agent ran this slot before the next one was due', %(error_code)s
    FROM slots
    ON CONFLICT DO NOTHING
    RETURNING target_id
),
moved AS (
    UPDATE schedules s
    SET next_due_at = vigil_next_slot(
            l.target_id, l.interval_secs,
            now() - make_interval(secs => l.interval_secs) + interval '1 millisecond'),
        leased_by = NULL, lease_expires_at = NULL
    FROM late l
    -- The locked rows, by TID: never a scan of the table.
    WHERE s.ctid = ANY (ARRAY(SELECT row_id FROM late)) AND s.ctid = l.row_id
    RETURNING s.target_id
)
SELECT (SELECT count(*) FROM stored) AS missed, (SELECT count(*) FROM moved) AS moved,
       (SELECT count(*) FROM cand) AS candidates;

-- name: release_slots
-- Gives back slots this agent holds and has not started: only while the lease is still its own
-- and for that very slot (a schedule that moved on, or a lease that expired and went to another
-- agent, is left alone).
UPDATE schedules s
SET leased_by = NULL, lease_expires_at = NULL
FROM unnest(%(target_ids)s::uuid[], %(scheduled_at)s::timestamptz[]) AS r(target_id, scheduled_at)
WHERE s.target_id = r.target_id AND s.region_id = %(region_id)s
  AND s.next_due_at = r.scheduled_at AND s.leased_by = %(agent_id)s
  AND s.lease_expires_at > now()
RETURNING s.target_id;

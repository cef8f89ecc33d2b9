-- name: rollup_state
-- The watermark, the database clock, and the longest interval of any target (which bounds how
-- far back one run has to look). ``in_flight``: when the oldest transaction of another session
-- of this database began, if one is open. A write still in flight is invisible to this run and
-- stamps its rows with its own start (received_at = its now()), so neither watermark may pass
-- that start: the next run then reads the write by arrival, and readers take no minute it lands
-- in from the rollups before that (rollups.py).
-- A transaction clears xact_start only after it is visible, and sets it before it writes.
SELECT s.ran_at, s.received_to, now() AS now,
       (SELECT coalesce(max(interval_secs), 60) FROM targets) AS max_interval,
       (SELECT min(a.xact_start) FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
          AND a.backend_type = 'client backend' AND a.xact_start IS NOT NULL) AS in_flight
FROM rollup_state s WHERE s.id = 1;

-- name: first_result
-- Where a first run's backfill starts (a scan of every partition: first run only).
SELECT min(scheduled_at) AS first FROM results;

-- name: watermark_hold
-- How far the watermark may go. Every write still to come for a (target, region) is for its
-- slot ``next_due_at`` or later (the missed-slot sweep writes placeholders from there on, a lease
-- is always for that slot), so a target's settled point must not pass its schedules'
-- ``next_due_at``: the watermark is held to ``next_due_at + interval + margin``. In normal running
-- every schedule is within an interval and a lease of now and nothing is held; a schedule left
-- behind (the worker was down, an interval was shortened, a slot keeps being leased and never
-- answered) holds it until the sweep has written its placeholders. Indexable: no interval is
-- shorter than 10 s.
SELECT min(s.next_due_at + make_interval(secs => t.interval_secs + %(margin)s)) AS hold
FROM schedules s JOIN targets t ON t.id = s.target_id
WHERE s.next_due_at < now() - make_interval(secs => 10 + %(margin)s)
  AND s.next_due_at + make_interval(secs => t.interval_secs + %(margin)s) < now();

-- name: rollup_minutes
-- Recomputes minutes with one set-based INSERT ... SELECT ... GROUP BY; rows that come out
-- identical are not written again. Per target, the minutes in [lo, hi) (hi NULL: no end) from its
-- previous settled point on (``since`` minus the target's interval and the lateness margin,
-- floored to the minute). The regular run passes its previous watermark as ``since`` and the
-- earliest of those points as ``lo``; a backfill passes day-sized chunks with ``since = lo``
-- (the per-target bound is then below ``lo``). ``lo`` and ``hi`` are constants, so partitions
-- outside them are pruned.
INSERT INTO result_rollups AS ru (
    target_id, region_id, minute, org_id, total, up, down, degraded, error, missed, samples,
    latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg, ttfb_avg)
SELECT r.target_id, r.region_id, date_trunc('minute', r.scheduled_at), r.org_id,
       count(*), count(*) FILTER (WHERE r.status = 'up'),
       count(*) FILTER (WHERE r.status = 'down'),
       count(*) FILTER (WHERE r.status = 'degraded'),
       count(*) FILTER (WHERE r.status = 'error'),
       count(*) FILTER (WHERE r.status = 'missed'),
       count(r.latency_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY r.latency_ms),
       avg(r.latency_ms), avg(r.dns_ms), avg(r.connect_ms), avg(r.tls_ms), avg(r.ttfb_ms)
FROM targets t
-- LATERAL: one probe of the (target_id, scheduled_at) index per target, never a scan of the
-- day's partition (there is no index on scheduled_at alone, to keep ingest cheap).
CROSS JOIN LATERAL (
    SELECT * FROM results r
    WHERE r.target_id = t.id
      AND r.scheduled_at >= date_trunc(
            'minute', %(since)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
      AND r.scheduled_at >= %(lo)s
      AND r.scheduled_at < coalesce(%(hi)s::timestamptz, 'infinity')
    OFFSET 0
) r
GROUP BY r.target_id, r.region_id, date_trunc('minute', r.scheduled_at), r.org_id
ON CONFLICT (target_id, region_id, minute) DO UPDATE
SET org_id = EXCLUDED.org_id, total = EXCLUDED.total, up = EXCLUDED.up, down = EXCLUDED.down,
    degraded = EXCLUDED.degraded, error = EXCLUDED.error, missed = EXCLUDED.missed,
    samples = EXCLUDED.samples, latency_p50 = EXCLUDED.latency_p50,
    latency_p95 = EXCLUDED.latency_p95, latency_p99 = EXCLUDED.latency_p99,
    latency_avg = EXCLUDED.latency_avg, dns_avg = EXCLUDED.dns_avg,
    connect_avg = EXCLUDED.connect_avg, tls_avg = EXCLUDED.tls_avg, ttfb_avg = EXCLUDED.ttfb_avg
WHERE (ru.total, ru.up, ru.down, ru.degraded, ru.error, ru.missed, ru.samples, ru.latency_p50,
       ru.latency_p95, ru.latency_p99, ru.latency_avg, ru.dns_avg, ru.connect_avg, ru.tls_avg,
       ru.ttfb_avg)
      IS DISTINCT FROM
      (EXCLUDED.total, EXCLUDED.up, EXCLUDED.down, EXCLUDED.degraded, EXCLUDED.error,
       EXCLUDED.missed, EXCLUDED.samples, EXCLUDED.latency_p50, EXCLUDED.latency_p95,
       EXCLUDED.latency_p99, EXCLUDED.latency_avg, EXCLUDED.dns_avg, EXCLUDED.connect_avg,
       EXCLUDED.tls_avg, EXCLUDED.ttfb_avg);

-- name: rollup_fresh_minutes
-- The incremental run, first half: the rows that arrived at or after ``since`` (the previous
-- run's arrival watermark; no upper bound, so every row this statement sees is in), found by
-- ``received_at`` through its BRIN index (the pages written since the previous run, in every
-- partition: a late row lands in an old one) and aggregated per (target, region, minute) in the
-- same pass. A minute with no rollup row yet had no row that arrived before ``since`` (every
-- such row is rolled up), so its aggregate is the minute's whole and is inserted: the common
-- case, one check of a target per minute. ON CONFLICT DO NOTHING finds the minutes that have a
-- row already (a second check in the minute, a real result replacing a ``missed`` placeholder,
-- a late row, rows the previous run looked at too), without a probe per minute into the
-- partitioned table (an index probe under run-time partition pruning, ~50 us each): they come
-- back as ``known`` and ``rollup_known_minutes`` recomputes them whole. So do minutes before
-- ``minutes_from`` (retention dropped their rows, not necessarily their raw rows).
-- Returns how many rows were inserted, the known minutes, and ``settled`` (see below).
WITH fresh AS MATERIALIZED (
    SELECT r.target_id, r.region_id, date_trunc('minute', r.scheduled_at) AS minute, r.org_id,
           count(*) AS total, count(*) FILTER (WHERE r.status = 'up') AS up,
           count(*) FILTER (WHERE r.status = 'down') AS down,
           count(*) FILTER (WHERE r.status = 'degraded') AS degraded,
           count(*) FILTER (WHERE r.status = 'error') AS error,
           count(*) FILTER (WHERE r.status = 'missed') AS missed,
           count(r.latency_ms) AS samples,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p95,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p99,
           avg(r.latency_ms) AS latency_avg, avg(r.dns_ms) AS dns_avg,
           avg(r.connect_ms) AS connect_avg, avg(r.tls_ms) AS tls_avg, avg(r.ttfb_ms) AS ttfb_avg
    FROM results r
    WHERE r.received_at >= %(since)s
    GROUP BY r.target_id, r.region_id, date_trunc('minute', r.scheduled_at), r.org_id
),
kept AS (
    SELECT coalesce((SELECT minutes_from FROM rollup_state WHERE id = 1), '-infinity') AS from_
),
written AS (
    INSERT INTO result_rollups (
        target_id, region_id, minute, org_id, total, up, down, degraded, error, missed, samples,
        latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg,
        ttfb_avg)
    SELECT f.target_id, f.region_id, f.minute, f.org_id, f.total, f.up, f.down, f.degraded,
           f.error, f.missed, f.samples, f.latency_p50, f.latency_p95, f.latency_p99,
           f.latency_avg, f.dns_avg, f.connect_avg, f.tls_avg, f.ttfb_avg
    FROM fresh f, kept k
    WHERE f.minute >= k.from_
    ON CONFLICT (target_id, region_id, minute) DO NOTHING
    RETURNING target_id, region_id, minute
),
known AS (
    SELECT f.target_id, f.region_id, f.minute FROM fresh f
    EXCEPT
    SELECT w.target_id, w.region_id, w.minute FROM written w
),
settled AS (
    -- Written minutes in hours already in the hourly rollups (before the hour of the target's
    -- settled point as of the previous run ``prev``: a late row), for ``rollup_hours_of``. No
    -- interval is shorter than 10 s: later minutes are never in such an hour, not joined.
    SELECT DISTINCT w.target_id, date_trunc('hour', w.minute) AS hour
    FROM (SELECT * FROM written
          WHERE minute < date_trunc('hour', %(prev)s::timestamptz
                                            - make_interval(secs => 10 + %(margin)s))) w
    JOIN targets t ON t.id = w.target_id
    WHERE w.minute < date_trunc(
        'hour', %(prev)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
)
SELECT (SELECT count(*) FROM written) AS written,
       coalesce((SELECT array_agg(target_id) FROM known), '{}') AS known_targets,
       coalesce((SELECT array_agg(region_id) FROM known), '{}') AS known_regions,
       coalesce((SELECT array_agg(minute) FROM known), '{}') AS known_minutes,
       coalesce((SELECT array_agg(target_id) FROM settled), '{}') AS target_ids,
       coalesce((SELECT array_agg(hour) FROM settled), '{}') AS hours;

-- name: rollup_known_minutes
-- The incremental run, second half: the given minutes (that had a rollup row already) recomputed
-- whole from their raw rows through the primary key, so a minute row is always what a
-- from-scratch computation gives (the quantiles are not mergeable). Rows that come out identical
-- are not written again. Returns how many were, and ``settled`` as ``rollup_fresh_minutes``.
WITH known AS (
    SELECT * FROM unnest(%(targets)s::uuid[], %(regions)s::text[], %(minutes)s::timestamptz[])
        AS k(target_id, region_id, minute)
),
written AS (
INSERT INTO result_rollups AS ru (
    target_id, region_id, minute, org_id, total, up, down, degraded, error, missed, samples,
    latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg, ttfb_avg)
SELECT r.target_id, r.region_id, k.minute, r.org_id,
       count(*), count(*) FILTER (WHERE r.status = 'up'),
       count(*) FILTER (WHERE r.status = 'down'),
       count(*) FILTER (WHERE r.status = 'degraded'),
       count(*) FILTER (WHERE r.status = 'error'),
       count(*) FILTER (WHERE r.status = 'missed'),
       count(r.latency_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY r.latency_ms),
       avg(r.latency_ms), avg(r.dns_ms), avg(r.connect_ms), avg(r.tls_ms), avg(r.ttfb_ms)
FROM known k
CROSS JOIN LATERAL (
    SELECT * FROM results r
    WHERE r.target_id = k.target_id AND r.region_id = k.region_id
      AND r.scheduled_at >= k.minute AND r.scheduled_at < k.minute + interval '1 minute'
    OFFSET 0
) r
GROUP BY r.target_id, r.region_id, k.minute, r.org_id
ON CONFLICT (target_id, region_id, minute) DO UPDATE
SET org_id = EXCLUDED.org_id, total = EXCLUDED.total, up = EXCLUDED.up, down = EXCLUDED.down,
    degraded = EXCLUDED.degraded, error = EXCLUDED.error, missed = EXCLUDED.missed,
    samples = EXCLUDED.samples, latency_p50 = EXCLUDED.latency_p50,
    latency_p95 = EXCLUDED.latency_p95, latency_p99 = EXCLUDED.latency_p99,
    latency_avg = EXCLUDED.latency_avg, dns_avg = EXCLUDED.dns_avg,
    connect_avg = EXCLUDED.connect_avg, tls_avg = EXCLUDED.tls_avg, ttfb_avg = EXCLUDED.ttfb_avg
WHERE (ru.total, ru.up, ru.down, ru.degraded, ru.error, ru.missed, ru.samples, ru.latency_p50,
       ru.latency_p95, ru.latency_p99, ru.latency_avg, ru.dns_avg, ru.connect_avg, ru.tls_avg,
       ru.ttfb_avg)
      IS DISTINCT FROM
      (EXCLUDED.total, EXCLUDED.up, EXCLUDED.down, EXCLUDED.degraded, EXCLUDED.error,
       EXCLUDED.missed, EXCLUDED.samples, EXCLUDED.latency_p50, EXCLUDED.latency_p95,
       EXCLUDED.latency_p99, EXCLUDED.latency_avg, EXCLUDED.dns_avg, EXCLUDED.connect_avg,
       EXCLUDED.tls_avg, EXCLUDED.ttfb_avg)
RETURNING ru.target_id, ru.minute
),
settled AS (
    -- Written minutes in hours already in the hourly rollups (before the hour of the target's
    -- settled point as of the previous run ``prev``: a late row), for ``rollup_hours_of``. No
    -- interval is shorter than 10 s: later minutes are never in such an hour, not joined.
    SELECT DISTINCT w.target_id, date_trunc('hour', w.minute) AS hour
    FROM (SELECT * FROM written
          WHERE minute < date_trunc('hour', %(prev)s::timestamptz
                                            - make_interval(secs => 10 + %(margin)s))) w
    JOIN targets t ON t.id = w.target_id
    WHERE w.minute < date_trunc(
        'hour', %(prev)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
)
SELECT (SELECT count(*) FROM written) AS written,
       coalesce((SELECT array_agg(target_id) FROM settled), '{}') AS target_ids,
       coalesce((SELECT array_agg(hour) FROM settled), '{}') AS hours;

-- name: rollup_hours
-- Hours that became settled with this run, per target: from the hour of its previous settled
-- point (``since``) to the hour of its new one (``until``), both ``- (interval + margin)``. Built
-- from the (final) minute rows: counts and sample-weighted means are exact, the quantiles are
-- quantiles of the minutes' quantiles. ``lo`` and ``hi`` are constant bounds for the scan (so
-- only the daily partitions in between are read, the default one and those ahead are pruned).
INSERT INTO result_rollups_hourly AS rh (
    target_id, region_id, hour, org_id, total, up, down, degraded, error, missed, samples,
    latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg, ttfb_avg)
SELECT m.target_id, m.region_id, date_trunc('hour', m.minute), m.org_id,
       sum(m.total), sum(m.up), sum(m.down), sum(m.degraded), sum(m.error), sum(m.missed),
       sum(m.samples),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY m.latency_p50),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.latency_p95),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.latency_p99),
       sum(m.latency_avg::float8 * m.samples) / nullif(sum(m.samples), 0),
       sum(m.dns_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.dns_avg IS NOT NULL), 0),
       sum(m.connect_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.connect_avg IS NOT NULL), 0),
       sum(m.tls_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.tls_avg IS NOT NULL), 0),
       sum(m.ttfb_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.ttfb_avg IS NOT NULL), 0)
FROM (
    -- Only the targets an hour settles for in this run (most runs: none): a pass over targets
    -- instead of an index probe per target.
    SELECT t.* FROM targets t
    WHERE date_trunc(
              'hour', %(since)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
          < date_trunc(
              'hour', %(until)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
) t
CROSS JOIN LATERAL (
    SELECT * FROM result_rollups m
    WHERE m.target_id = t.id
      AND m.minute >= date_trunc(
            'hour', %(since)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
      AND m.minute < date_trunc(
            'hour', %(until)s::timestamptz - make_interval(secs => t.interval_secs + %(margin)s))
      AND m.minute >= %(lo)s AND m.minute < %(hi)s
    OFFSET 0
) m
GROUP BY m.target_id, m.region_id, date_trunc('hour', m.minute), m.org_id
ON CONFLICT (target_id, region_id, hour) DO UPDATE
SET org_id = EXCLUDED.org_id, total = EXCLUDED.total, up = EXCLUDED.up, down = EXCLUDED.down,
    degraded = EXCLUDED.degraded, error = EXCLUDED.error, missed = EXCLUDED.missed,
    samples = EXCLUDED.samples, latency_p50 = EXCLUDED.latency_p50,
    latency_p95 = EXCLUDED.latency_p95, latency_p99 = EXCLUDED.latency_p99,
    latency_avg = EXCLUDED.latency_avg, dns_avg = EXCLUDED.dns_avg,
    connect_avg = EXCLUDED.connect_avg, tls_avg = EXCLUDED.tls_avg, ttfb_avg = EXCLUDED.ttfb_avg
WHERE (rh.total, rh.up, rh.down, rh.degraded, rh.error, rh.missed, rh.samples, rh.latency_p50,
       rh.latency_p95, rh.latency_p99, rh.latency_avg, rh.dns_avg, rh.connect_avg, rh.tls_avg,
       rh.ttfb_avg)
      IS DISTINCT FROM
      (EXCLUDED.total, EXCLUDED.up, EXCLUDED.down, EXCLUDED.degraded, EXCLUDED.error,
       EXCLUDED.missed, EXCLUDED.samples, EXCLUDED.latency_p50, EXCLUDED.latency_p95,
       EXCLUDED.latency_p99, EXCLUDED.latency_avg, EXCLUDED.dns_avg, EXCLUDED.connect_avg,
       EXCLUDED.tls_avg, EXCLUDED.ttfb_avg)
RETURNING rh.target_id;

-- name: advance_watermark
-- Only forward (both watermarks): a slower concurrent run never moves them back.
UPDATE rollup_state
SET ran_at = greatest(coalesce(ran_at, '-infinity'), %(ran_at)s),
    received_to = greatest(coalesce(received_to, '-infinity'), %(received_to)s), runs = runs + 1
WHERE id = 1;

-- name: drop_expired_partitions
-- Raw partitions of days before both the retention cut-off and the day whose every minute is
-- settled in the rollups (for the longest interval), so nothing is dropped before it is rolled up.
SELECT vigil_drop_result_partitions(least(
    (now() AT TIME ZONE 'UTC')::date - %(retention_days)s,
    ((s.ran_at - make_interval(secs => %(longest_secs)s)) AT TIME ZONE 'UTC')::date)) AS dropped
FROM rollup_state s
WHERE s.id = 1 AND s.ran_at IS NOT NULL;

-- name: drop_expired_minutes
-- Minute-rollup partitions of days before both the minute-retention cut-off and the day whose
-- every hour is in result_rollups_hourly (hours before the hour of each target's settled point
-- are written, and the longest interval's settled point is the earliest), so no minute goes
-- before its hour is written.
SELECT vigil_drop_rollup_partitions(least(
    (now() AT TIME ZONE 'UTC')::date - %(retention_days)s,
    ((s.ran_at - make_interval(secs => %(longest_secs)s)) AT TIME ZONE 'UTC')::date)) AS dropped
FROM rollup_state s
WHERE s.id = 1 AND s.ran_at IS NOT NULL;

-- name: mark_late_arrivals
-- A catch-up run (the previous one more than a day ago) recomputes every minute from ``lo`` (its
-- previous settled point) on by slot time. Rows that arrived since the arrival watermark
-- ``since`` for slots before ``lo`` (an agent's spool drained in the gap) are found here by
-- arrival, through the BRIN index on ``received_at`` (partitions of slots from ``lo`` on are
-- pruned), and their minutes marked for ``rollup_dirty_minutes``. Ingest marks nothing.
INSERT INTO rollup_dirty (target_id, minute)
SELECT DISTINCT r.target_id, date_trunc('minute', r.scheduled_at)
FROM results r
WHERE r.received_at >= %(since)s AND r.scheduled_at < %(lo)s
ON CONFLICT DO NOTHING;

-- name: rollup_dirty_minutes
-- Minutes a late result landed in before a catch-up run's range (``mark_late_arrivals``):
-- recomputed from the raw rows, the marks taken in the same statement (a failed run keeps them). Returns the
-- (target, hour) of each, whose hourly rows ``rollup_hours_of`` then rebuilds.
WITH dirty AS (
    DELETE FROM rollup_dirty
    WHERE (target_id, minute) IN (
        SELECT target_id, minute FROM rollup_dirty ORDER BY marked_at LIMIT %(limit)s)
    RETURNING target_id, minute
),
fresh AS (
    INSERT INTO result_rollups AS ru (
        target_id, region_id, minute, org_id, total, up, down, degraded, error, missed, samples,
        latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg,
        ttfb_avg)
    SELECT r.target_id, r.region_id, d.minute, r.org_id,
           count(*), count(*) FILTER (WHERE r.status = 'up'),
           count(*) FILTER (WHERE r.status = 'down'),
           count(*) FILTER (WHERE r.status = 'degraded'),
           count(*) FILTER (WHERE r.status = 'error'),
           count(*) FILTER (WHERE r.status = 'missed'),
           count(r.latency_ms),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY r.latency_ms),
           avg(r.latency_ms), avg(r.dns_ms), avg(r.connect_ms), avg(r.tls_ms), avg(r.ttfb_ms)
    FROM dirty d
    JOIN results r ON r.target_id = d.target_id
                  AND r.scheduled_at >= d.minute AND r.scheduled_at < d.minute + interval '1 minute'
    GROUP BY r.target_id, r.region_id, d.minute, r.org_id
    ON CONFLICT (target_id, region_id, minute) DO UPDATE
    SET org_id = EXCLUDED.org_id, total = EXCLUDED.total, up = EXCLUDED.up,
        down = EXCLUDED.down, degraded = EXCLUDED.degraded, error = EXCLUDED.error,
        missed = EXCLUDED.missed, samples = EXCLUDED.samples,
        latency_p50 = EXCLUDED.latency_p50, latency_p95 = EXCLUDED.latency_p95,
        latency_p99 = EXCLUDED.latency_p99, latency_avg = EXCLUDED.latency_avg,
        dns_avg = EXCLUDED.dns_avg, connect_avg = EXCLUDED.connect_avg,
        tls_avg = EXCLUDED.tls_avg, ttfb_avg = EXCLUDED.ttfb_avg
    RETURNING 1
)
SELECT DISTINCT target_id, date_trunc('hour', minute) AS hour,
       (SELECT count(*) FROM fresh) AS written
FROM dirty;

-- name: rollup_hours_of
-- Rebuilds the hourly rows of the given (target, hour) pairs from their minute rows.
INSERT INTO result_rollups_hourly AS rh (
    target_id, region_id, hour, org_id, total, up, down, degraded, error, missed, samples,
    latency_p50, latency_p95, latency_p99, latency_avg, dns_avg, connect_avg, tls_avg, ttfb_avg)
SELECT m.target_id, m.region_id, p.hour, m.org_id,
       sum(m.total), sum(m.up), sum(m.down), sum(m.degraded), sum(m.error), sum(m.missed),
       sum(m.samples),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY m.latency_p50),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.latency_p95),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.latency_p99),
       sum(m.latency_avg::float8 * m.samples) / nullif(sum(m.samples), 0),
       sum(m.dns_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.dns_avg IS NOT NULL), 0),
       sum(m.connect_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.connect_avg IS NOT NULL), 0),
       sum(m.tls_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.tls_avg IS NOT NULL), 0),
       sum(m.ttfb_avg::float8 * m.samples)
           / nullif(sum(m.samples) FILTER (WHERE m.ttfb_avg IS NOT NULL), 0)
FROM unnest(%(target_ids)s::uuid[], %(hours)s::timestamptz[]) AS p(target_id, hour)
JOIN result_rollups m ON m.target_id = p.target_id
                     AND m.minute >= p.hour AND m.minute < p.hour + interval '1 hour'
-- Not where retention dropped the minutes: the hour would be rebuilt from part of them.
WHERE p.hour >= coalesce((SELECT minutes_from FROM rollup_state WHERE id = 1), '-infinity')
GROUP BY m.target_id, m.region_id, p.hour, m.org_id
ON CONFLICT (target_id, region_id, hour) DO UPDATE
SET org_id = EXCLUDED.org_id, total = EXCLUDED.total, up = EXCLUDED.up, down = EXCLUDED.down,
    degraded = EXCLUDED.degraded, error = EXCLUDED.error, missed = EXCLUDED.missed,
    samples = EXCLUDED.samples, latency_p50 = EXCLUDED.latency_p50,
    latency_p95 = EXCLUDED.latency_p95, latency_p99 = EXCLUDED.latency_p99,
    latency_avg = EXCLUDED.latency_avg, dns_avg = EXCLUDED.dns_avg,
    connect_avg = EXCLUDED.connect_avg, tls_avg = EXCLUDED.tls_avg, ttfb_avg = EXCLUDED.ttfb_avg;

-- name: refresh_last_24h
-- The last 24 h of the given targets (all of them when ``ids`` is NULL) from the hourly rows of
-- the window starting at ``since``: one index range per target (target_id, hour). A row is
-- rewritten only when it changes. Its triggers keep the org's totals (``target_last_24h_org``,
-- 0210): one delta row per org and statement.
INSERT INTO target_last_24h AS d (target_id, org_id, since, checks, up)
SELECT t.id, t.org_id, %(since)s, coalesce(s.checks, 0), coalesce(s.up, 0)
FROM targets t
LEFT JOIN LATERAL (
    SELECT sum(h.total - h.missed)::bigint AS checks, sum(h.up + h.degraded)::bigint AS up
    FROM result_rollups_hourly h
    WHERE h.target_id = t.id AND h.hour >= %(since)s
) s ON true
WHERE %(ids)s::uuid[] IS NULL OR t.id = ANY(%(ids)s::uuid[])
ON CONFLICT (target_id) DO UPDATE
SET since = EXCLUDED.since, checks = EXCLUDED.checks, up = EXCLUDED.up
WHERE (d.since, d.checks, d.up) IS DISTINCT FROM (EXCLUDED.since, EXCLUDED.checks, EXCLUDED.up);

-- name: day_window
-- The last-24-h window now, and the one every row was last rewritten for.
SELECT date_trunc('hour', now()) - interval '23 hours' AS since,
       (SELECT day_since FROM rollup_state WHERE id = 1) AS done;

-- name: mark_day_window
UPDATE rollup_state SET day_since = %(since)s WHERE id = 1;

-- name: compact_org_last_24h
-- The dashboard's last 24 h (target_last_24h_org, 0210): every org's delta rows folded into one.
SELECT vigil_compact_target_last_24h_org() AS folded;

-- name: compact_org_status_counts
-- The dashboard's status totals (org_status_counts, 0200): every org's delta rows folded into
-- one row per status, so a summary sums a handful of rows.
SELECT vigil_compact_org_status_counts() AS folded;

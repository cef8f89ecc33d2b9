-- Reads of one target's results over a range: raw rows, uptime and latency series.

-- name: results_page
-- One page of a target's results, newest first (the target id is the caller's: not selected).
SELECT region_id, scheduled_at, started_at, finished_at, status, latency_ms, status_code, error,
       error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details
FROM results
WHERE target_id = %(target_id)s AND org_id = %(org_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(region)s::text IS NULL OR region_id = %(region)s)
ORDER BY scheduled_at DESC, region_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: target_horizon
-- The target (404 when it is not this org's), its interval, and the rollup watermark: together
-- they say up to which minute its rollups are final (rollups.py); and
-- where the minute rollups kept by retention start (NULL: all kept).
SELECT t.interval_secs, s.ran_at, s.minutes_from
FROM targets t LEFT JOIN rollup_state s ON s.id = 1
WHERE t.id = %(target_id)s AND t.org_id = %(org_id)s;

-- name: uptime
-- Settled full hours [h1, h2) from hourly rollups, settled full minutes [a, h1) and [h2, b) from
-- minute rollups, the rest of [from, to) from raw rows: the same counts as counting raw rows over
-- [from, to).
WITH parts AS (
    SELECT coalesce(sum(rh.up), 0) AS up, coalesce(sum(rh.down), 0) AS down,
           coalesce(sum(rh.degraded), 0) AS degraded, coalesce(sum(rh.error), 0) AS error,
           coalesce(sum(rh.missed), 0) AS missed
    FROM result_rollups_hourly rh
    WHERE rh.target_id = %(target_id)s AND rh.org_id = %(org_id)s
      AND rh.hour >= %(h1)s AND rh.hour < %(h2)s
      AND (%(region)s::text IS NULL OR rh.region_id = %(region)s)
    UNION ALL
    SELECT coalesce(sum(ru.up), 0), coalesce(sum(ru.down), 0), coalesce(sum(ru.degraded), 0),
           coalesce(sum(ru.error), 0), coalesce(sum(ru.missed), 0)
    FROM result_rollups ru
    WHERE ru.target_id = %(target_id)s AND ru.org_id = %(org_id)s
      AND ((ru.minute >= %(a)s AND ru.minute < %(h1)s)
           OR (ru.minute >= %(h2)s AND ru.minute < %(b)s))
      AND (%(region)s::text IS NULL OR ru.region_id = %(region)s)
    UNION ALL
    SELECT count(*) FILTER (WHERE status = 'up'), count(*) FILTER (WHERE status = 'down'),
           count(*) FILTER (WHERE status = 'degraded'), count(*) FILTER (WHERE status = 'error'),
           count(*) FILTER (WHERE status = 'missed')
    FROM results
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s
      AND scheduled_at >= %(from)s AND scheduled_at < %(head_to)s
      AND (%(region)s::text IS NULL OR region_id = %(region)s)
    UNION ALL
    SELECT count(*) FILTER (WHERE status = 'up'), count(*) FILTER (WHERE status = 'down'),
           count(*) FILTER (WHERE status = 'degraded'), count(*) FILTER (WHERE status = 'error'),
           count(*) FILTER (WHERE status = 'missed')
    FROM results
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s
      AND scheduled_at >= %(b)s AND scheduled_at < %(to)s
      AND (%(region)s::text IS NULL OR region_id = %(region)s)
)
SELECT sum(up) AS up, sum(down) AS down, sum(degraded) AS degraded, sum(error) AS error,
       sum(missed) AS missed
FROM parts;

-- name: latency_buckets
-- Rollup rows folded into buckets of %(bucket)s seconds from %(origin)s (optionally per region):
-- hourly rows for [h_lo, h_hi) (long ranges), minute rows for [m_lo, to). A row goes to the bucket
-- its start falls in (an hour that starts before the origin, to the first). Quantile q of a
-- bucket is the q-quantile of its rows' q-quantiles (exact when each row holds one sample, as a
-- minute of a 60 s check per region does); avg and the phase means are sample-weighted means.
WITH src AS (
    SELECT region_id, hour AS at, samples, latency_p50, latency_p95, latency_p99, latency_avg,
           dns_avg, connect_avg, tls_avg, ttfb_avg
    FROM result_rollups_hourly
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s
      AND hour >= %(h_lo)s AND hour < %(h_hi)s AND samples > 0
      AND (%(region)s::text IS NULL OR region_id = %(region)s)
    UNION ALL
    SELECT region_id, minute, samples, latency_p50, latency_p95, latency_p99, latency_avg,
           dns_avg, connect_avg, tls_avg, ttfb_avg
    FROM result_rollups
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s
      AND minute >= %(m_lo)s AND minute < %(to)s AND samples > 0
      AND (%(region)s::text IS NULL OR region_id = %(region)s)
)
SELECT CASE WHEN %(by_region)s THEN region_id END AS region,
       greatest(date_bin(make_interval(secs => %(bucket)s), at, %(origin)s),
                %(origin)s::timestamptz) AS bucket_at,
       sum(samples) AS samples,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_p50) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_p95) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_p99) AS p99,
       sum(latency_avg::float8 * samples) / sum(samples) AS avg,
       sum(dns_avg::float8 * samples)
           / nullif(sum(samples) FILTER (WHERE dns_avg IS NOT NULL), 0) AS dns,
       sum(connect_avg::float8 * samples)
           / nullif(sum(samples) FILTER (WHERE connect_avg IS NOT NULL), 0) AS connect,
       sum(tls_avg::float8 * samples)
           / nullif(sum(samples) FILTER (WHERE tls_avg IS NOT NULL), 0) AS tls,
       sum(ttfb_avg::float8 * samples)
           / nullif(sum(samples) FILTER (WHERE ttfb_avg IS NOT NULL), 0) AS ttfb
FROM src
GROUP BY 1, 2
ORDER BY 1, 2;

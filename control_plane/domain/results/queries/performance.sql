-- name: phase_stats
-- Per-phase mean, p50 and p95 of a target's conclusive results in [from, to) (``missed`` slots
-- and phases a kind skips are left out). download is what follows the first byte: total - ttfb.
WITH r AS (
    SELECT dns_ms, connect_ms, tls_ms, ttfb_ms, latency_ms,
           CASE WHEN latency_ms IS NOT NULL AND ttfb_ms IS NOT NULL
                THEN greatest(latency_ms - ttfb_ms, 0) END AS download_ms
    FROM results
    WHERE target_id = %(target_id)s AND org_id = %(org_id)s
      AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
      AND (%(region)s::text IS NULL OR region_id = %(region)s)
      AND status <> 'missed'
)
SELECT count(*) AS samples,
       avg(dns_ms) AS dns_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dns_ms) AS dns_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY dns_ms) AS dns_p95,
       avg(connect_ms) AS connect_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY connect_ms) AS connect_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY connect_ms) AS connect_p95,
       avg(tls_ms) AS tls_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tls_ms) AS tls_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY tls_ms) AS tls_p95,
       avg(ttfb_ms) AS ttfb_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttfb_ms) AS ttfb_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ttfb_ms) AS ttfb_p95,
       avg(download_ms) AS download_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY download_ms) AS download_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY download_ms) AS download_p95,
       avg(latency_ms) AS total_avg,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS total_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS total_p95
FROM r;

-- name: slowest
-- The slowest checks of the range (``results_page``'s columns, for ``result_from_row``).
SELECT region_id, scheduled_at, started_at, finished_at, status, latency_ms, status_code, error,
       error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details
FROM results
WHERE target_id = %(target_id)s AND org_id = %(org_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(region)s::text IS NULL OR region_id = %(region)s)
  AND latency_ms IS NOT NULL
ORDER BY latency_ms DESC, scheduled_at DESC
LIMIT %(limit)s;

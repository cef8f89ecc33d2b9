-- Per-minute rollups of raw results, maintained by the worker (control_plane/monitoring/rollups.py).
-- Reads over ranges (/uptime, /latency) cost O(minutes), not O(samples); raw rows can expire by
-- retention while rollups stay.

-- One row per (target, region, minute of scheduled_at). ``total`` counts every raw row of the
-- minute, ``missed`` placeholders included; latency figures are over the rows with a latency_ms
-- (``samples`` of them) and are NULL when there is none.
CREATE TABLE result_rollups (
    target_id uuid NOT NULL,
    region_id text NOT NULL,
    minute timestamptz NOT NULL,
    org_id uuid NOT NULL,
    total integer NOT NULL,
    up integer NOT NULL,
    down integer NOT NULL,
    degraded integer NOT NULL,
    error integer NOT NULL,
    missed integer NOT NULL,
    samples integer NOT NULL,
    latency_p50 real,
    latency_p95 real,
    latency_p99 real,
    latency_avg real,
    dns_avg real,
    connect_avg real,
    tls_avg real,
    ttfb_avg real,
    PRIMARY KEY (target_id, region_id, minute)
);
-- All-regions reads of one target over a range.
CREATE INDEX result_rollups_target_minute_idx ON result_rollups (target_id, minute);

-- The same per hour, written once an hour is settled (from the minute rows, so the latency
-- quantiles of an hour are the quantiles of its minutes' quantiles): long ranges read ~24 rows a
-- day instead of 1440.
CREATE TABLE result_rollups_hourly (
    target_id uuid NOT NULL,
    region_id text NOT NULL,
    hour timestamptz NOT NULL,
    org_id uuid NOT NULL,
    total integer NOT NULL,
    up integer NOT NULL,
    down integer NOT NULL,
    degraded integer NOT NULL,
    error integer NOT NULL,
    missed integer NOT NULL,
    samples integer NOT NULL,
    latency_p50 real,
    latency_p95 real,
    latency_p99 real,
    latency_avg real,
    dns_avg real,
    connect_avg real,
    tls_avg real,
    ttfb_avg real,
    PRIMARY KEY (target_id, region_id, hour)
);
CREATE INDEX result_rollups_hourly_target_hour_idx ON result_rollups_hourly (target_id, hour);

-- The rollup job's watermark (a single row). ``ran_at`` is the database time at which the last
-- successful run started: every raw row committed before it is reflected in the rollups, and a
-- target's minutes before ran_at - (interval + lateness margin) can no longer change (see
-- rollups.py), so reads take those from rollups and the rest from raw rows.
CREATE TABLE rollup_state (
    id integer PRIMARY KEY CHECK (id = 1),
    ran_at timestamptz,
    runs bigint NOT NULL DEFAULT 0
);
INSERT INTO rollup_state (id) VALUES (1);

-- Retention of raw results: drops the daily partitions of days before ``before_day`` (rollups
-- stay). The caller passes a day whose rows are already rolled up.
CREATE FUNCTION vigil_drop_result_partitions(before_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'results'::regclass
          AND c.relname ~ '^results_[0-9]{8}$'
          AND to_date(substr(c.relname, 9), 'YYYYMMDD') < before_day
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

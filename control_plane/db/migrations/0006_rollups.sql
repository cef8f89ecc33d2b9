-- Per-minute rollups of raw results, maintained by the worker (control_plane/monitoring/rollups.py).
-- Reads over ranges (/uptime, /latency) cost O(minutes), not O(samples); raw rows can expire by
-- retention while rollups stay.

-- One row per (target, region, minute of scheduled_at). ``total`` counts every raw row of the
-- minute, ``missed`` placeholders included; latency figures are over the rows with a latency_ms
-- (``samples`` of them) and are NULL when there is none. Partitioned by UTC day like ``results``
-- (``result_rollups_YYYYMMDD``, made ahead by the worker), so minute retention drops whole days;
-- a default partition keeps rows of a day whose partition does not exist yet.
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
) PARTITION BY RANGE (minute);
CREATE TABLE result_rollups_default PARTITION OF result_rollups DEFAULT;
-- All-regions reads of one target over a range.
CREATE INDEX result_rollups_target_minute_idx ON result_rollups (target_id, minute);

-- Creates the daily minute-rollup partitions (UTC days) from ``from_day`` for ``days`` days
-- (idempotent). Rows of such a day already in the default partition (rolled up while the day had
-- no partition: a backfill, or a worker that was down) are moved into the new partition, so
-- creating it never fails on them. Workers starting together take turns (a transaction lock).
CREATE FUNCTION vigil_ensure_rollup_partitions(from_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    lo timestamptz;
    hi timestamptz;
    made integer := 0;
    name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vigil_rollup_partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        name := 'result_rollups_' || to_char(d, 'YYYYMMDD');
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        IF to_regclass(name) IS NOT NULL THEN
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM result_rollups_default WHERE minute >= lo AND minute < hi) THEN
            EXECUTE format('CREATE TABLE %I (LIKE result_rollups INCLUDING DEFAULTS)', name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM result_rollups_default'
                ' WHERE minute >= %L AND minute < %L RETURNING *)'
                ' INSERT INTO %I SELECT * FROM moved', lo, hi, name);
            EXECUTE format(
                'ALTER TABLE result_rollups ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                name, lo, hi);
        ELSE
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF result_rollups FOR VALUES FROM (%L) TO (%L)',
                name, lo, hi);
        END IF;
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- The days the worker keeps made (from yesterday, 9 days), and on an upgrade every older day that
-- has a raw partition too: the first rollup run backfills those days, into their own partitions
-- rather than the default one.
SELECT vigil_ensure_rollup_partitions(s.first, (now() AT TIME ZONE 'UTC')::date + 8 - s.first)
FROM (
    SELECT least((now() AT TIME ZONE 'UTC')::date - 1,
                 min(to_date(substr(c.relname, 9), 'YYYYMMDD'))) AS first
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'results'::regclass AND c.relname ~ '^results_[0-9]{8}$'
) s;

-- The same per hour, written once an hour is settled (from the minute rows, so the latency
-- quantiles of an hour are the quantiles of its minutes' quantiles): long ranges read ~24 rows a
-- day instead of 1440. Not partitioned and never expired: this is the long-term store.
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
-- rollups.py), so reads take those from rollups and the rest from raw rows. ``minutes_from`` is
-- where the minute rollups kept by retention start (a UTC midnight; NULL: all are kept): reads
-- take what is before it from the hourly rollups.
CREATE TABLE rollup_state (
    id integer PRIMARY KEY CHECK (id = 1),
    ran_at timestamptz,
    runs bigint NOT NULL DEFAULT 0,
    minutes_from timestamptz
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

-- Retention of minute rollups: drops the daily partitions of days before ``before_day`` and
-- deletes such rows from the default partition (hourly rollups stay), and records the new start
-- of the minute rollups first, so reads look for those days in the hourly rollups. The caller
-- passes a day whose hours are already in result_rollups_hourly. One worker at a time.
CREATE FUNCTION vigil_drop_rollup_partitions(before_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
    cut timestamptz := before_day::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vigil_rollup_partitions'));
    UPDATE rollup_state SET minutes_from = greatest(coalesce(minutes_from, cut), cut)
    WHERE id = 1;
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'result_rollups'::regclass
          AND c.relname ~ '^result_rollups_[0-9]{8}$'
          AND to_date(substr(c.relname, 16), 'YYYYMMDD') < before_day
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM result_rollups_default WHERE minute < cut;
    RETURN dropped;
END $$;

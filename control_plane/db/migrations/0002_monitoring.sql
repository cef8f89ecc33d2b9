-- The monitoring loop: schedules (slots and leases), results, per-region state, incidents.

-- First grid point of a target at or after ``after``. Every target has a stable offset inside its
-- interval (from a hash of its id), so 10,000 targets at 60 s spread over the minute instead of
-- all firing at :00.
CREATE FUNCTION vigil_slot_offset(target uuid, interval_secs integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashtextextended(target::text, 0) & 9223372036854775807) % interval_secs
$$;

CREATE FUNCTION vigil_next_slot(target uuid, interval_secs integer, after timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(
        ceil((extract(epoch FROM after) - vigil_slot_offset(target, interval_secs))
             / interval_secs) * interval_secs + vigil_slot_offset(target, interval_secs))
$$;

-- One row per (enabled target, region): the slot that is due next and who holds it.
CREATE TABLE schedules (
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    region_id text NOT NULL REFERENCES regions (id),
    next_due_at timestamptz NOT NULL,
    leased_by uuid,
    lease_expires_at timestamptz,
    PRIMARY KEY (target_id, region_id)
);
CREATE INDEX schedules_due_idx ON schedules (region_id, next_due_at);
-- The missed-slot sweep looks only at slots overdue by more than the smallest interval.
CREATE INDEX schedules_overdue_idx ON schedules (next_due_at);

-- Schedules follow targets and their regions whichever code path changes them.
CREATE FUNCTION vigil_schedule_region() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM schedules WHERE target_id = OLD.target_id AND region_id = OLD.region_id;
        RETURN OLD;
    END IF;
    INSERT INTO schedules (target_id, region_id, next_due_at)
    SELECT t.id, NEW.region_id, vigil_next_slot(t.id, t.interval_secs, now())
    FROM targets t WHERE t.id = NEW.target_id AND t.enabled
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE TRIGGER target_regions_schedule
AFTER INSERT OR DELETE ON target_regions
FOR EACH ROW EXECUTE FUNCTION vigil_schedule_region();

CREATE FUNCTION vigil_schedule_target() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.enabled THEN
        DELETE FROM schedules WHERE target_id = NEW.id;
    ELSIF NOT OLD.enabled THEN
        INSERT INTO schedules (target_id, region_id, next_due_at)
        SELECT NEW.id, r.region_id, vigil_next_slot(NEW.id, NEW.interval_secs, now())
        FROM target_regions r WHERE r.target_id = NEW.id
        ON CONFLICT DO NOTHING;
    ELSIF NEW.interval_secs <> OLD.interval_secs THEN
        UPDATE schedules SET next_due_at = vigil_next_slot(NEW.id, NEW.interval_secs, now())
        WHERE target_id = NEW.id AND lease_expires_at IS NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER targets_schedule
AFTER UPDATE OF enabled, interval_secs ON targets
FOR EACH ROW EXECUTE FUNCTION vigil_schedule_target();

-- Raw results, one per slot, partitioned by day. A default partition keeps rows that arrive for
-- a day whose partition does not exist yet: nothing is ever refused for want of a partition.
CREATE TABLE results (
    target_id uuid NOT NULL,
    region_id text NOT NULL,
    scheduled_at timestamptz NOT NULL,
    org_id uuid NOT NULL,
    agent_id uuid,
    status text NOT NULL CHECK (status IN ('up', 'down', 'degraded', 'error', 'missed')),
    started_at timestamptz,
    finished_at timestamptz,
    latency_ms real,
    status_code smallint,
    error text,
    error_code text,
    dns_ms real,
    connect_ms real,
    tls_ms real,
    ttfb_ms real,
    details jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, region_id, scheduled_at)
) PARTITION BY RANGE (scheduled_at);
CREATE TABLE results_default PARTITION OF results DEFAULT;
CREATE INDEX results_target_time_idx ON results (target_id, scheduled_at DESC);

-- Creates the daily partitions from ``from_day`` for ``days`` days (idempotent).
CREATE FUNCTION vigil_ensure_result_partitions(from_day date, days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made integer := 0;
    name text;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        name := 'results_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF results FOR VALUES FROM (%L) TO (%L)',
                name, d::timestamptz, (d + 1)::timestamptz);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9);

-- Per (target, region): the confirmation counters of the incident engine and its watermark.
CREATE TABLE region_states (
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    region_id text NOT NULL,
    consecutive_bad integer NOT NULL DEFAULT 0,
    consecutive_good integer NOT NULL DEFAULT 0,
    failing boolean NOT NULL DEFAULT false,
    failing_since timestamptz,
    -- Results up to this slot have been evaluated.
    evaluated_to timestamptz NOT NULL DEFAULT '-infinity',
    -- Last conclusive (up/down/degraded) result: the region is "reporting".
    last_reported_at timestamptz,
    last_status text,
    last_error text,
    PRIMARY KEY (target_id, region_id)
);

-- Targets with results not yet evaluated. Ingest marks, the evaluator clears (conditionally).
-- No foreign key: ingest marks thousands of rows a second, and a mark for a deleted target is
-- simply cleared by its next evaluation.
CREATE TABLE evaluation_queue (
    target_id uuid PRIMARY KEY,
    dirty_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE incidents (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    status text NOT NULL DEFAULT 'down',
    cause text,
    regions text[] NOT NULL DEFAULT '{}',
    check_count integer NOT NULL DEFAULT 0,
    opened_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
-- At most one open incident per target: opening is an INSERT that can only succeed once.
CREATE UNIQUE INDEX incidents_one_open_idx ON incidents (target_id) WHERE ended_at IS NULL;
CREATE INDEX incidents_org_idx ON incidents (org_id, started_at DESC);
CREATE INDEX incidents_target_idx ON incidents (target_id, started_at DESC);

-- Schedules for targets that existed before this migration.
INSERT INTO schedules (target_id, region_id, next_due_at)
SELECT t.id, r.region_id, vigil_next_slot(t.id, t.interval_secs, now())
FROM targets t JOIN target_regions r ON r.target_id = t.id
WHERE t.enabled;

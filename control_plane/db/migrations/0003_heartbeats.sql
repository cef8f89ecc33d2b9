-- Heartbeat (push) monitors: the monitored job calls /api/heartbeat/{token}; no agent probes it.
--
-- A heartbeat target has no probe regions and never gets a schedule. Its results (pings, failures
-- and missed periods) are written by the control plane and the worker under the pseudo region
-- 'heartbeat', which the incident engine treats as the target's one reporting region.

-- When a heartbeat target turns down if nothing arrives: ``interval`` + ``grace`` after ``since``.
CREATE FUNCTION vigil_heartbeat_deadline(interval_secs integer, spec jsonb, since timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT since + make_interval(secs => interval_secs + coalesce((spec ->> 'grace')::int, 60))
$$;

-- One row per heartbeat target; ``id`` is the target's id.
CREATE TABLE heartbeats (
    id uuid PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- Found like an API token: the clear prefix picks the row, the keyed hash proves the token.
    token_prefix text NOT NULL,
    token_hash bytea NOT NULL,
    -- {"heartbeat_token": sealed}: AES-GCM bound to (org_id, id, field), so reads can show the
    -- ping URL again; shaped like targets.secrets so key rotation rewraps it the same way.
    secrets jsonb NOT NULL,
    -- The target is down once this passes without a signal; every ping, failure and recorded
    -- miss moves it on.
    due_at timestamptz NOT NULL,
    last_ping_at timestamptz,
    last_fail_at timestamptz,
    -- A run in progress: /start arrived and neither a ping nor a failure since.
    last_start_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT heartbeats_token_prefix_key UNIQUE (token_prefix)
);
CREATE INDEX heartbeats_due_idx ON heartbeats (due_at);

-- Schedules (agent slots) skip heartbeat targets, whichever code path creates or changes them.
CREATE OR REPLACE FUNCTION vigil_schedule_region() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM schedules WHERE target_id = OLD.target_id AND region_id = OLD.region_id;
        RETURN OLD;
    END IF;
    INSERT INTO schedules (target_id, region_id, next_due_at)
    SELECT t.id, NEW.region_id, vigil_next_slot(t.id, t.interval_secs, now())
    FROM targets t WHERE t.id = NEW.target_id AND t.enabled AND t.kind <> 'heartbeat'
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION vigil_schedule_target() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.enabled OR NEW.kind = 'heartbeat' THEN
        DELETE FROM schedules WHERE target_id = NEW.id;
    ELSIF NOT OLD.enabled OR OLD.kind = 'heartbeat' THEN
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

-- A change of kind now matters to schedules too.
DROP TRIGGER targets_schedule ON targets;
CREATE TRIGGER targets_schedule
AFTER UPDATE OF enabled, interval_secs, kind ON targets
FOR EACH ROW EXECUTE FUNCTION vigil_schedule_target();

DELETE FROM schedules s USING targets t WHERE t.id = s.target_id AND t.kind = 'heartbeat';

-- Re-enabling a heartbeat target, or changing its interval or grace, starts a fresh period: the
-- time it was paused (or the old schedule) is not held against the job.
CREATE FUNCTION vigil_heartbeat_rearm() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE heartbeats
    SET due_at = vigil_heartbeat_deadline(NEW.interval_secs, NEW.spec, now())
    WHERE id = NEW.id;
    RETURN NEW;
END $$;

CREATE TRIGGER targets_heartbeat_rearm
AFTER UPDATE OF enabled, interval_secs, spec ON targets
FOR EACH ROW
WHEN (NEW.kind = 'heartbeat' AND NEW.enabled AND (
    NOT OLD.enabled OR NEW.interval_secs <> OLD.interval_secs OR NEW.spec IS DISTINCT FROM OLD.spec))
EXECUTE FUNCTION vigil_heartbeat_rearm();

-- The current status of every target, maintained instead of computed on read (issue 16).
--
-- ``target_state`` holds one row per target: what ``target_status`` / ``org_target_status``
-- say of it (same rules, same answers), kept by triggers on everything those
-- rules read: the target (enabled, kind), its schedule rows (each region's last status, written
-- by ingest), the evaluation's region states (a heartbeat's source) and its open incident.
-- The list's ``sort=status`` / ``status=`` read it through ``target_state_org_rank_idx`` (an
-- index range in the sort's order), not a pass over the org's 60,000 targets per request.
--
-- ``org_status_counts`` holds the dashboard's totals per org and status as deltas: every
-- statement that changes statuses appends one row per (org, status) it moved, without taking a
-- lock (a counter row per org would serialise the org's ingests and deadlock them against each
-- other across statements); the dashboard sums the org's few rows, and
-- ``vigil_compact_org_status_counts`` (the rollup job) folds them back to one row each.
--
-- Cost on the hot path: the schedule trigger fires once per lease and per ingest statement and
-- joins the statement's old and new rows (a hash join of the batch) to find the rows whose
-- last status moved; only those targets are locked and recomputed. A steady batch writes
-- nothing more.
--
-- Concurrency: a recompute first locks the targets' state rows in id order, then computes in a
-- new statement (a new snapshot under READ COMMITTED): whoever locks last sees every change
-- committed before it and its own, so concurrent ingests of two regions of one target never
-- leave a stale status. A statement-level trigger locks in one sorted round per statement (a
-- row-level one, one target's row); the incident
-- engine, which changes statuses in several statements, locks its chunk's rows up front
-- (engine.py), so the lock order is always the id order.

CREATE TABLE target_state (
    target_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    status text NOT NULL,
    -- The list's status order (``sort=status``): down first, paused last.
    rank smallint GENERATED ALWAYS AS (
        array_position(ARRAY['down', 'error', 'degraded', 'unknown', 'up', 'paused']::text[],
                        status)) STORED
) WITH (fillfactor = 80);
CREATE INDEX target_state_org_rank_idx ON target_state (org_id, rank, target_id);

CREATE TABLE org_status_counts (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    status text NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX org_status_counts_org_idx ON org_status_counts (org_id, status);

-- The status of the given targets, by the rules of ``org_target_status`` (one index probe per
-- target and source: for the few targets a statement changed).
CREATE FUNCTION vigil_target_status_of(ids uuid[])
RETURNS TABLE (target_id uuid, org_id uuid, status text)
LANGUAGE sql STABLE AS $$
SELECT t.id, t.org_id,
       CASE
           WHEN NOT t.enabled THEN 'paused'
           WHEN i.id IS NOT NULL THEN
               CASE WHEN i.status IN ('down', 'error', 'degraded') THEN i.status ELSE 'down' END
           WHEN w.worst IS NULL THEN 'unknown'
           ELSE (ARRAY['down', 'error', 'degraded', 'up'])[w.worst]
       END
FROM targets t
LEFT JOIN incidents i ON i.target_id = t.id AND i.ended_at IS NULL
LEFT JOIN LATERAL (
    SELECT min(array_position(ARRAY['down', 'error', 'degraded', 'up'], x.st)) AS worst
    FROM (
        SELECT s.last_status AS st FROM schedules s
        WHERE s.target_id = t.id AND s.last_at IS NOT NULL
          AND t.enabled AND t.kind <> 'heartbeat'
        UNION ALL
        SELECT rs.last_status FROM region_states rs
        WHERE rs.target_id = t.id AND rs.last_reported_at IS NOT NULL
          AND NOT (t.enabled AND t.kind <> 'heartbeat')
    ) x
) w ON true
WHERE t.id = ANY (ids)
$$;

-- Recompute the given targets' rows: lock them in id order, then compute (a new snapshot).
CREATE FUNCTION vigil_target_state_refresh(ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM target_state WHERE target_id = ANY (ids) ORDER BY target_id FOR UPDATE;
    UPDATE target_state ts SET status = c.status
    FROM vigil_target_status_of(ids) c
    WHERE ts.target_id = c.target_id AND ts.status <> c.status;
END $$;

-- targets: a new target is unknown (paused when created disabled): nothing reported it yet; a
-- change of enabled or kind recomputes it; a deleted one goes.
CREATE FUNCTION vigil_targets_state() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO target_state (target_id, org_id, status)
        SELECT n.id, n.org_id, CASE WHEN n.enabled THEN 'unknown' ELSE 'paused' END
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM vigil_target_state_refresh(ARRAY(
            SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.enabled <> o.enabled OR n.kind <> o.kind));
    ELSE
        DELETE FROM target_state ts USING old_rows o WHERE ts.target_id = o.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER targets_state_insert AFTER INSERT ON targets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_targets_state();
CREATE TRIGGER targets_state_update AFTER UPDATE ON targets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_targets_state();
CREATE TRIGGER targets_state_delete AFTER DELETE ON targets
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_targets_state();

-- schedules: a probed, enabled target's regions. An UPDATE (lease, ingest) matters only where
-- the last status moved: one firing per statement, the batch's old and new rows joined.
-- Rows are inserted and deleted one target at a time by the region and target triggers
-- (a bulk create of 10,000 targets inserts 20,000 schedule rows, each in its own statement;
-- a bulk delete cascades per target): there the triggers are per row and their WHEN keeps
-- every row without a last result from even calling them. An inserted row with a last result
-- is a resume (the targets trigger recomputes the target once its rows are back) or a direct
-- write; a deleted one matters only while its target is still probed and enabled (a region
-- unassigned: pause, a change of kind and deletion are the targets trigger's).
CREATE FUNCTION vigil_schedules_state() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM vigil_target_state_refresh(ARRAY(
        SELECT DISTINCT n.target_id
        FROM new_rows n JOIN old_rows o
          ON o.target_id = n.target_id AND o.region_id = n.region_id
        WHERE n.last_status IS DISTINCT FROM o.last_status
           OR (n.last_at IS NULL) <> (o.last_at IS NULL)));
    RETURN NULL;
END $$;

CREATE FUNCTION vigil_schedule_row_state() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Inside the targets trigger (a resume): it recomputes after all its rows are back.
        IF pg_trigger_depth() = 1 THEN
            PERFORM vigil_target_state_refresh(ARRAY[NEW.target_id]);
        END IF;
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM targets t
               WHERE t.id = OLD.target_id AND t.enabled AND t.kind <> 'heartbeat') THEN
        PERFORM vigil_target_state_refresh(ARRAY[OLD.target_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER schedules_state_update AFTER UPDATE ON schedules
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_schedules_state();
CREATE TRIGGER schedules_state_insert AFTER INSERT ON schedules
    FOR EACH ROW WHEN (NEW.last_at IS NOT NULL)
    EXECUTE FUNCTION vigil_schedule_row_state();
CREATE TRIGGER schedules_state_delete AFTER DELETE ON schedules
    FOR EACH ROW WHEN (OLD.last_at IS NOT NULL)
    EXECUTE FUNCTION vigil_schedule_row_state();

-- region_states: the source of an enabled heartbeat target only (a probed target reads its
-- schedules, a paused one is paused). Rows go only with their target.
CREATE FUNCTION vigil_region_states_state() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM vigil_target_state_refresh(ARRAY(
            SELECT DISTINCT n.target_id
            FROM new_rows n
            JOIN old_rows o ON o.target_id = n.target_id AND o.region_id = n.region_id
            JOIN targets t ON t.id = n.target_id
            WHERE t.kind = 'heartbeat' AND t.enabled
              AND (n.last_status IS DISTINCT FROM o.last_status
                   OR (n.last_reported_at IS NULL) <> (o.last_reported_at IS NULL))));
    ELSE
        PERFORM vigil_target_state_refresh(ARRAY(
            SELECT DISTINCT n.target_id FROM new_rows n JOIN targets t ON t.id = n.target_id
            WHERE t.kind = 'heartbeat' AND t.enabled AND n.last_reported_at IS NOT NULL));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER region_states_state_insert AFTER INSERT ON region_states
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_region_states_state();
CREATE TRIGGER region_states_state_update AFTER UPDATE ON region_states
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_region_states_state();

-- incidents: an open incident decides the status; opening, closing or a change of its status
-- moves it. A deleted open incident too (per row: a target's deletion cascades per target, and
-- then finds no target).
CREATE FUNCTION vigil_incidents_state() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM vigil_target_state_refresh(ARRAY(
            SELECT DISTINCT n.target_id FROM new_rows n WHERE n.ended_at IS NULL));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM vigil_target_state_refresh(ARRAY(
            SELECT DISTINCT n.target_id FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE (n.ended_at IS NULL) <> (o.ended_at IS NULL)
               OR (n.ended_at IS NULL AND n.status IS DISTINCT FROM o.status)
               OR n.target_id <> o.target_id));
    ELSIF EXISTS (SELECT 1 FROM targets t WHERE t.id = OLD.target_id) THEN
        PERFORM vigil_target_state_refresh(ARRAY[OLD.target_id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER incidents_state_insert AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_incidents_state();
CREATE TRIGGER incidents_state_update AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_incidents_state();
CREATE TRIGGER incidents_state_delete AFTER DELETE ON incidents
    FOR EACH ROW WHEN (OLD.ended_at IS NULL)
    EXECUTE FUNCTION vigil_incidents_state();

-- target_state → org_status_counts: one delta row per (org, status) a statement moved.
CREATE FUNCTION vigil_target_state_counts() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO org_status_counts (org_id, status, n)
        SELECT n.org_id, n.status, count(*) FROM new_rows n
        -- An org deleted in this statement's transaction has no counts to keep.
        WHERE EXISTS (SELECT 1 FROM orgs g WHERE g.id = n.org_id)
        GROUP BY n.org_id, n.status;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO org_status_counts (org_id, status, n)
        SELECT d.org_id, d.status, sum(d.n) FROM (
            SELECT n.org_id, n.status, 1 AS n FROM new_rows n
            UNION ALL
            SELECT o.org_id, o.status, -1 FROM old_rows o
        ) d
        WHERE EXISTS (SELECT 1 FROM orgs g WHERE g.id = d.org_id)
        GROUP BY d.org_id, d.status
        HAVING sum(d.n) <> 0;
    ELSE
        INSERT INTO org_status_counts (org_id, status, n)
        SELECT o.org_id, o.status, -count(*) FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM orgs g WHERE g.id = o.org_id)
        GROUP BY o.org_id, o.status;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER target_state_counts_insert AFTER INSERT ON target_state
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_state_counts();
CREATE TRIGGER target_state_counts_update AFTER UPDATE ON target_state
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_state_counts();
CREATE TRIGGER target_state_counts_delete AFTER DELETE ON target_state
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_state_counts();

-- Folds each org's delta rows into one per status (zeros dropped). Deletes what it sums: a
-- concurrent statement's new deltas are not in its snapshot and stay; a second compaction
-- waits on the rows the first deleted and skips them. One at a time (the advisory lock).
CREATE FUNCTION vigil_compact_org_status_counts() RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('org_status_counts', 0)) THEN
        RETURN 0;
    END IF;
    WITH busy AS (
        SELECT c.org_id, c.status FROM org_status_counts c
        GROUP BY c.org_id, c.status HAVING count(*) > 1 OR sum(c.n) = 0
    ),
    gone AS (
        DELETE FROM org_status_counts c USING busy b
        WHERE c.org_id = b.org_id AND c.status = b.status
        RETURNING c.org_id, c.status, c.n
    ),
    put AS (
        INSERT INTO org_status_counts (org_id, status, n)
        SELECT g.org_id, g.status, sum(g.n) FROM gone g
        GROUP BY g.org_id, g.status HAVING sum(g.n) <> 0
    )
    SELECT count(*) INTO folded FROM gone;
    RETURN folded;
END $$;

-- What every existing target reads now.
INSERT INTO target_state (target_id, org_id, status)
SELECT c.target_id, c.org_id, c.status
FROM vigil_target_status_of(ARRAY(SELECT id FROM targets)) c;
SELECT vigil_compact_org_status_counts();

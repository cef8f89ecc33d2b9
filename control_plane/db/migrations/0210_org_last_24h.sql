-- The dashboard's last 24 h per org, maintained instead of summed on every summary (issue 16).
--
-- The summary summed the org's ``target_last_24h`` rows joined with its targets: 60,000 rows,
-- 39 ms of its 62 ms in PostgreSQL. ``target_last_24h_org`` now holds each org's totals as
-- delta rows, appended by triggers on ``target_last_24h`` whatever writes it (the rollup job's
-- refresh, a target's deletion cascading to its row): one row per org for a statement that
-- rewrites many targets' rows (the hourly full pass writes one per org, not 60,000), none when
-- the sums did not move. No lock is taken: a counter row per org would serialise the rollup job
-- against target deletes. The summary sums the org's few rows; the rollup job folds them back
-- to one per org (``vigil_compact_target_last_24h_org``), as ``org_status_counts`` (0200).
--
-- ``target_last_24h`` gets the target's org (``org_id``): a row deleted by its target's
-- deletion no longer has a target to find the org by. A target never changes org.
--
-- The name starts with ``target_last_24h``: the system bench counts it with the rollup job's
-- writes (bench/honesty.py ROLLUP_TABLES), where nearly all of its rows come from.

ALTER TABLE target_last_24h ADD COLUMN org_id uuid;
UPDATE target_last_24h d SET org_id = t.org_id FROM targets t WHERE t.id = d.target_id;
ALTER TABLE target_last_24h ALTER COLUMN org_id SET NOT NULL;

CREATE TABLE target_last_24h_org (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    checks bigint NOT NULL,
    up bigint NOT NULL
);
CREATE INDEX target_last_24h_org_idx ON target_last_24h_org (org_id);

-- Inserted and updated rows: one delta per org the statement moved (an INSERT ... ON CONFLICT
-- DO UPDATE fires both, each with its own rows). An org deleted in this transaction keeps none.
CREATE FUNCTION vigil_target_last_24h_org() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO target_last_24h_org (org_id, checks, up)
        SELECT n.org_id, sum(n.checks), sum(n.up) FROM new_rows n
        WHERE EXISTS (SELECT 1 FROM orgs g WHERE g.id = n.org_id)
        GROUP BY n.org_id
        HAVING sum(n.checks) <> 0 OR sum(n.up) <> 0;
    ELSE
        INSERT INTO target_last_24h_org (org_id, checks, up)
        SELECT d.org_id, sum(d.checks), sum(d.up) FROM (
            SELECT n.org_id, n.checks, n.up FROM new_rows n
            UNION ALL
            SELECT o.org_id, -o.checks, -o.up FROM old_rows o
        ) d
        WHERE EXISTS (SELECT 1 FROM orgs g WHERE g.id = d.org_id)
        GROUP BY d.org_id
        HAVING sum(d.checks) <> 0 OR sum(d.up) <> 0;
    END IF;
    RETURN NULL;
END $$;

-- Deleted rows: per row, as they go one target at a time (a target's deletion cascades to its
-- row in a statement of its own); a row with nothing counted costs no call.
CREATE FUNCTION vigil_target_last_24h_org_gone() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM orgs g WHERE g.id = OLD.org_id) THEN
        INSERT INTO target_last_24h_org (org_id, checks, up)
        VALUES (OLD.org_id, -OLD.checks, -OLD.up);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER target_last_24h_org_insert AFTER INSERT ON target_last_24h
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_last_24h_org();
CREATE TRIGGER target_last_24h_org_update AFTER UPDATE ON target_last_24h
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_last_24h_org();
CREATE TRIGGER target_last_24h_org_delete AFTER DELETE ON target_last_24h
    FOR EACH ROW WHEN (OLD.checks <> 0 OR OLD.up <> 0)
    EXECUTE FUNCTION vigil_target_last_24h_org_gone();

-- Folds each org's delta rows into one (zeros dropped). Deletes what it sums: a concurrent
-- statement's new deltas are not in its snapshot and stay. One at a time (the advisory lock).
CREATE FUNCTION vigil_compact_target_last_24h_org() RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('target_last_24h_org', 0)) THEN
        RETURN 0;
    END IF;
    WITH busy AS (
        SELECT c.org_id FROM target_last_24h_org c
        GROUP BY c.org_id
        HAVING count(*) > 1 OR (sum(c.checks) = 0 AND sum(c.up) = 0)
    ),
    gone AS (
        DELETE FROM target_last_24h_org c USING busy b
        WHERE c.org_id = b.org_id
        RETURNING c.org_id, c.checks, c.up
    ),
    put AS (
        INSERT INTO target_last_24h_org (org_id, checks, up)
        SELECT g.org_id, sum(g.checks), sum(g.up) FROM gone g
        GROUP BY g.org_id HAVING sum(g.checks) <> 0 OR sum(g.up) <> 0
    )
    SELECT count(*) INTO folded FROM gone;
    RETURN folded;
END $$;

INSERT INTO target_last_24h_org (org_id, checks, up)
SELECT org_id, sum(checks), sum(up) FROM target_last_24h
GROUP BY org_id HAVING sum(checks) <> 0 OR sum(up) <> 0;

-- The part of each target's read that only a write to the target changes, kept as JSON text
-- (issue 16: the target list's page of 1,000 built in PostgreSQL spent about 20 ms per request
-- writing the same JSON for targets nobody had touched: the check with its credentials
-- redacted, the alert bindings and regions from their own tables, the timestamps).
--
-- ``target_docs`` holds one row per target: the JSON object of its fields that are no live
-- state (``Target`` from ``id`` to ``write_source``, keys named as the fields), written by
-- ``vigil_target_docs_build`` exactly as the list's statement wrote them until now. The list
-- stitches it with the live part (status, last result, last 24 h, open incident), read per
-- request as before.
--
-- Kept by statement-level triggers, in the transaction of the write, on everything the doc
-- reads: the target's row (any update: create, PATCH, bulk actions, key rotation, pause and
-- resume), its alert bindings (including a channel's delete removing them by cascade) and its
-- regions. A write path forgotten in Python cannot leave a stale doc. A bulk create of 10,000
-- builds each doc once per statement that touches it (targets, regions, alerts): three set-based
-- passes, no per-row trigger.

CREATE TABLE target_docs (
    target_id uuid PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    doc text NOT NULL
);

-- The static part of the reads of the given targets. ``check`` is the stored public spec with
-- every sealed field but the headers set to the redaction sentinel (codec.redacted_check;
-- secret header values are redacted after decoding, targets/rows.py).
CREATE FUNCTION vigil_target_docs_build(ids uuid[])
RETURNS TABLE (target_id uuid, doc text)
LANGUAGE sql STABLE AS $$
SELECT t.id, row_to_json(x)::text
FROM targets t
CROSS JOIN LATERAL (SELECT
    t.id AS id,
    t.name AS name,
    CASE WHEN t.secrets = '{}'::jsonb THEN t.spec
         ELSE t.spec || (SELECT coalesce(jsonb_object_agg(k, '***'::text), '{}')
                         FROM jsonb_object_keys(t.secrets) AS k
                         WHERE NOT starts_with(k, 'headers.')) END AS "check",
    t.interval_secs AS "interval",
    t.enabled AS enabled,
    t.tags AS tags,
    (SELECT coalesce(json_agg(json_build_object('channel_id', a.channel_id)
                              ORDER BY a.position), '[]')
     FROM target_alerts a WHERE a.target_id = t.id) AS alerts,
    t.alert_confirmations AS alert_confirmations,
    t.notify_recovery AS notify_recovery,
    t.renotify_interval_secs AS renotify_interval_secs,
    t.region_policy AS region_policy,
    ARRAY(SELECT r.region_id FROM target_regions r WHERE r.target_id = t.id
          ORDER BY r.region_id) AS regions,
    t.created_at AS created_at,
    t.updated_at AS updated_at,
    t.write_source AS write_source
) x
WHERE t.id = ANY(ids)
$$;

-- Concurrency: two transactions writing parts of one target (a PATCH and a channel's delete
-- removing its binding) must not leave the doc of whichever built first. The refresh locks the
-- docs first (id order, as every refresh does), then builds them in a new statement, a new
-- snapshot under READ COMMITTED: whoever locks last sees every change committed before it and
-- its own.
CREATE FUNCTION vigil_target_docs_refresh(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM target_docs WHERE target_id = ANY(ids) ORDER BY target_id FOR UPDATE;
    INSERT INTO target_docs (target_id, doc)
    SELECT b.target_id, b.doc FROM vigil_target_docs_build(ids) b
    ON CONFLICT (target_id) DO UPDATE SET doc = EXCLUDED.doc;
END $$;

-- The targets' own rows (insert, update): their ids are the transition table's.
CREATE FUNCTION vigil_target_docs_targets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM vigil_target_docs_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

-- A child table's rows (alert bindings, regions): the targets they belong to, old or new.
CREATE FUNCTION vigil_target_docs_children() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT target_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT target_id FROM old_rows);
    ELSE
        ids := ARRAY(SELECT target_id FROM new_rows UNION SELECT target_id FROM old_rows);
    END IF;
    -- A target deleted in this statement (the cascade to its children) has no row to build:
    -- the build reads ``targets`` and finds none; its doc went with it.
    PERFORM vigil_target_docs_refresh(ids);
    RETURN NULL;
END $$;

CREATE TRIGGER targets_docs_insert AFTER INSERT ON targets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_targets();
CREATE TRIGGER targets_docs_update AFTER UPDATE ON targets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_targets();

CREATE TRIGGER target_alerts_docs_insert AFTER INSERT ON target_alerts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();
CREATE TRIGGER target_alerts_docs_update AFTER UPDATE ON target_alerts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();
CREATE TRIGGER target_alerts_docs_delete AFTER DELETE ON target_alerts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();

CREATE TRIGGER target_regions_docs_insert AFTER INSERT ON target_regions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();
CREATE TRIGGER target_regions_docs_update AFTER UPDATE ON target_regions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();
CREATE TRIGGER target_regions_docs_delete AFTER DELETE ON target_regions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_target_docs_children();

SELECT vigil_target_docs_refresh(ARRAY(SELECT id FROM targets));

-- Alert rules of one org. A rule applies to a target listed in alert_rule_targets or carrying
-- one of the rule's tags (so a target tagged after the rule was made is covered).

-- name: rules_page
-- ``target_id``: only the rules that apply to that target (by id or tag), NULL for all.
SELECT r.*,
       ARRAY(SELECT c.channel_id FROM alert_rule_channels c WHERE c.rule_id = r.id
             ORDER BY c.position) AS channel_ids,
       ARRAY(SELECT t.target_id FROM alert_rule_targets t WHERE t.rule_id = r.id
             ORDER BY t.target_id) AS target_ids,
       count(*) OVER () AS total
FROM alert_rules r
WHERE r.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL
       OR EXISTS (SELECT 1 FROM alert_rule_targets t
                  WHERE t.rule_id = r.id AND t.target_id = %(target_id)s)
       OR r.tags && (SELECT tg.tags FROM targets tg
                     WHERE tg.id = %(target_id)s AND tg.org_id = %(org_id)s))
ORDER BY r.id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: rules_count
SELECT count(*) AS total
FROM alert_rules r
WHERE r.org_id = %(org_id)s
  AND (%(target_id)s::uuid IS NULL
       OR EXISTS (SELECT 1 FROM alert_rule_targets t
                  WHERE t.rule_id = r.id AND t.target_id = %(target_id)s)
       OR r.tags && (SELECT tg.tags FROM targets tg
                     WHERE tg.id = %(target_id)s AND tg.org_id = %(org_id)s));

-- name: get_rule
SELECT r.*,
       ARRAY(SELECT c.channel_id FROM alert_rule_channels c WHERE c.rule_id = r.id
             ORDER BY c.position) AS channel_ids,
       ARRAY(SELECT t.target_id FROM alert_rule_targets t WHERE t.rule_id = r.id
             ORDER BY t.target_id) AS target_ids
FROM alert_rules r
WHERE r.org_id = %(org_id)s AND r.id = %(id)s;

-- name: lock_rule
SELECT id FROM alert_rules WHERE org_id = %(org_id)s AND id = %(id)s FOR UPDATE;

-- name: org_channels
SELECT id FROM channels WHERE org_id = %(org_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: org_targets
SELECT id FROM targets WHERE org_id = %(org_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: insert_rule
INSERT INTO alert_rules (id, org_id, name, threshold, severity, tags, enabled, write_source)
VALUES (%(id)s, %(org_id)s, %(name)s, %(threshold)s, %(severity)s, %(tags)s, %(enabled)s,
        %(write_source)s);

-- name: update_rule
UPDATE alert_rules
SET name = %(name)s, threshold = %(threshold)s, severity = %(severity)s, tags = %(tags)s,
    enabled = %(enabled)s, write_source = %(write_source)s, updated_at = now()
WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: clear_channels
DELETE FROM alert_rule_channels WHERE rule_id = %(id)s;

-- name: add_channels
INSERT INTO alert_rule_channels (rule_id, channel_id, position)
SELECT %(id)s, c.id, c.pos FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS c (id, pos);

-- name: clear_targets
DELETE FROM alert_rule_targets WHERE rule_id = %(id)s;

-- name: add_targets
INSERT INTO alert_rule_targets (rule_id, target_id)
SELECT %(id)s, t FROM unnest(%(ids)s::uuid[]) AS t;

-- name: delete_rule
DELETE FROM alert_rules WHERE org_id = %(org_id)s AND id = %(id)s;

-- name: rules_for_target
-- For delivery (the notifications side): the enabled rules that apply to a target, with their
-- channels, severity and threshold.
SELECT r.id, r.severity, r.threshold,
       ARRAY(SELECT c.channel_id FROM alert_rule_channels c WHERE c.rule_id = r.id
             ORDER BY c.position) AS channel_ids
FROM alert_rules r
JOIN targets tg ON tg.id = %(target_id)s AND tg.org_id = r.org_id
WHERE r.enabled
  AND (r.tags && tg.tags
       OR EXISTS (SELECT 1 FROM alert_rule_targets t
                  WHERE t.rule_id = r.id AND t.target_id = tg.id))
ORDER BY r.id;

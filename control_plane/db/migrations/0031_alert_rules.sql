-- Alert rules: bind channels, a severity and a threshold to targets by id or by tag, so a target
-- tagged later is covered without editing it. Delivery reads them once the notifications work
-- lands (a rule applies to a target listed in alert_rule_targets or carrying one of its tags).
CREATE TABLE alert_rules (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Consecutive failing checks before the rule fires.
    threshold integer NOT NULL DEFAULT 2 CHECK (threshold BETWEEN 1 AND 100),
    severity text NOT NULL DEFAULT 'critical' CHECK (severity IN ('critical', 'major', 'minor')),
    tags text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    write_source text NOT NULL DEFAULT 'api' CHECK (write_source IN ('ui', 'api', 'terraform')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_org_idx ON alert_rules (org_id, id);
CREATE INDEX alert_rules_tags_idx ON alert_rules USING gin (tags);

CREATE TABLE alert_rule_channels (
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position integer NOT NULL,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX alert_rule_channels_channel_idx ON alert_rule_channels (channel_id);

CREATE TABLE alert_rule_targets (
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, target_id)
);
CREATE INDEX alert_rule_targets_target_idx ON alert_rule_targets (target_id);

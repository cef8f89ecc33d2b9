-- Tenancy, tokens, regions, agents, targets and their bindings.

CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Per-org floor on check interval; NULL means the deployment default.
    min_check_interval_secs integer CHECK (min_check_interval_secs >= 10),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    prefix text NOT NULL,
    hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT api_tokens_prefix_key UNIQUE (prefix)
);
CREATE INDEX api_tokens_org_idx ON api_tokens (org_id);

CREATE TABLE regions (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    location text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id uuid PRIMARY KEY,
    region_id text NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL,
    hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT agents_region_fkey FOREIGN KEY (region_id) REFERENCES regions (id),
    CONSTRAINT agents_prefix_key UNIQUE (prefix)
);
CREATE INDEX agents_region_idx ON agents (region_id);

CREATE TABLE channels (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    kind text NOT NULL,
    config jsonb NOT NULL DEFAULT '{}',
    secrets jsonb NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    write_source text NOT NULL DEFAULT 'api',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT channels_org_name_key UNIQUE (org_id, name)
);

CREATE TABLE targets (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind text NOT NULL,
    -- The check spec without its secret fields; those live sealed in ``secrets``.
    spec jsonb NOT NULL,
    secrets jsonb NOT NULL DEFAULT '{}',
    interval_secs integer NOT NULL CHECK (interval_secs >= 10),
    enabled boolean NOT NULL DEFAULT true,
    tags text[] NOT NULL DEFAULT '{}',
    alert_confirmations integer NOT NULL DEFAULT 2 CHECK (alert_confirmations >= 1),
    notify_recovery boolean NOT NULL DEFAULT true,
    renotify_interval_secs integer NOT NULL DEFAULT 3600
        CHECK (renotify_interval_secs = 0 OR renotify_interval_secs >= 60),
    region_policy jsonb NOT NULL DEFAULT '"majority"',
    write_source text NOT NULL CHECK (write_source IN ('ui', 'api', 'terraform')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX targets_org_idx ON targets (org_id, id);
CREATE INDEX targets_tags_idx ON targets USING gin (tags);

CREATE TABLE target_regions (
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    region_id text NOT NULL,
    PRIMARY KEY (target_id, region_id),
    CONSTRAINT target_regions_region_fkey FOREIGN KEY (region_id) REFERENCES regions (id)
);
CREATE INDEX target_regions_region_idx ON target_regions (region_id);

CREATE TABLE target_alerts (
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position integer NOT NULL,
    PRIMARY KEY (target_id, channel_id)
);

-- Every deployment has the region a local agent serves out of the box.
INSERT INTO regions (id, name, location) VALUES ('default', 'Default', 'local');

-- A target with its region ids and alert channel ids, as every read of the API wants it.
CREATE VIEW target_details AS
SELECT t.*,
       ARRAY(SELECT r.region_id FROM target_regions r WHERE r.target_id = t.id
             ORDER BY r.region_id) AS regions,
       ARRAY(SELECT a.channel_id FROM target_alerts a WHERE a.target_id = t.id
             ORDER BY a.position) AS alert_ids
FROM targets t;

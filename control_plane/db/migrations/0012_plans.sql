-- Plans and quotas: what an org may have (targets, channels, pages, members, share links), how
-- often it may check, and its per-minute API budgets. A plan's NULL is "no limit". An org has a
-- plan and may have overrides of any of its columns. Self-hosted deployments default to
-- ``unlimited``; ``free``, ``pro`` and ``business`` are examples an operator may change.
CREATE TABLE plans (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    max_targets integer CHECK (max_targets >= 0),
    min_check_interval_secs integer CHECK (min_check_interval_secs >= 10),
    max_notification_channels integer CHECK (max_notification_channels >= 0),
    max_status_pages integer CHECK (max_status_pages >= 0),
    max_public_components integer CHECK (max_public_components >= 0),
    max_members integer CHECK (max_members >= 0),
    max_share_links_per_monitor integer CHECK (max_share_links_per_monitor >= 0),
    max_shared_monitors integer CHECK (max_shared_monitors >= 0),
    -- Requests per minute by category (rate limits).
    rate_api_writes integer CHECK (rate_api_writes >= 1),
    rate_api_reads integer CHECK (rate_api_reads >= 1),
    rate_bulk_ops integer CHECK (rate_bulk_ops >= 1),
    rate_test_now integer CHECK (rate_test_now >= 1),
    rate_check_now integer CHECK (rate_check_now >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (id, name, max_targets, min_check_interval_secs, max_notification_channels,
                   max_status_pages, max_public_components, max_members,
                   max_share_links_per_monitor, max_shared_monitors, rate_api_writes,
                   rate_api_reads, rate_bulk_ops, rate_test_now, rate_check_now)
VALUES
    ('unlimited', 'Unlimited', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL),
    ('free', 'Free', 5, 300, 2, 1, 5, 1, 1, 2, 60, 300, 2, 10, 10),
    ('pro', 'Pro', 50, 60, 10, 3, 50, 10, 5, 50, 300, 1500, 10, 60, 60),
    ('business', 'Business', 200, 30, 50, 10, 200, 50, 20, 200, 1000, 5000, 30, 200, 200);

CREATE TABLE plan_overrides (
    org_id uuid PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    max_targets integer CHECK (max_targets >= 0),
    min_check_interval_secs integer CHECK (min_check_interval_secs >= 10),
    max_notification_channels integer CHECK (max_notification_channels >= 0),
    max_status_pages integer CHECK (max_status_pages >= 0),
    max_public_components integer CHECK (max_public_components >= 0),
    max_members integer CHECK (max_members >= 0),
    max_share_links_per_monitor integer CHECK (max_share_links_per_monitor >= 0),
    max_shared_monitors integer CHECK (max_shared_monitors >= 0),
    rate_api_writes integer CHECK (rate_api_writes >= 1),
    rate_api_reads integer CHECK (rate_api_reads >= 1),
    rate_bulk_ops integer CHECK (rate_bulk_ops >= 1),
    rate_test_now integer CHECK (rate_test_now >= 1),
    rate_check_now integer CHECK (rate_check_now >= 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE orgs ADD COLUMN plan_id text NOT NULL DEFAULT 'unlimited' REFERENCES plans (id);

-- The limits that apply to each org: its overrides, else its plan's.
CREATE VIEW org_limits AS
SELECT o.id AS org_id, o.plan_id,
       coalesce(v.max_targets, p.max_targets) AS max_targets,
       -- The org's own floor (an older per-org setting) still holds where it is stricter.
       greatest(coalesce(v.min_check_interval_secs, p.min_check_interval_secs),
                o.min_check_interval_secs) AS min_check_interval_secs,
       coalesce(v.max_notification_channels, p.max_notification_channels)
           AS max_notification_channels,
       coalesce(v.max_status_pages, p.max_status_pages) AS max_status_pages,
       coalesce(v.max_public_components, p.max_public_components) AS max_public_components,
       coalesce(v.max_members, p.max_members) AS max_members,
       coalesce(v.max_share_links_per_monitor, p.max_share_links_per_monitor)
           AS max_share_links_per_monitor,
       coalesce(v.max_shared_monitors, p.max_shared_monitors) AS max_shared_monitors,
       coalesce(v.rate_api_writes, p.rate_api_writes) AS rate_api_writes,
       coalesce(v.rate_api_reads, p.rate_api_reads) AS rate_api_reads,
       coalesce(v.rate_bulk_ops, p.rate_bulk_ops) AS rate_bulk_ops,
       coalesce(v.rate_test_now, p.rate_test_now) AS rate_test_now,
       coalesce(v.rate_check_now, p.rate_check_now) AS rate_check_now
FROM orgs o
JOIN plans p ON p.id = o.plan_id
LEFT JOIN plan_overrides v ON v.org_id = o.id;

-- Event webhooks: org-level subscriptions to Vigil's events (monitor.*, incident.*,
-- maintenance.*), delivered through the notification outbox like channel alerts.
--
-- An event is written in the transaction of the change that causes it: one ``notifications``
-- row of kind ``event`` per enabled subscription of the org that wants it, carrying the event's
-- stable id (the receiver's dedup key), its name and its body. Such a row has a ``webhook_id``
-- and neither channel nor incident. The delivery job sends them in order per
-- (subscription, subject): the subject is the target (monitor.* and incident.*) or the window
-- (maintenance.*).
CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events text[] NOT NULL CHECK (cardinality(events) >= 1),
    -- The signing secret, sealed (AAD bound to org/webhook/"secret"); NULL: unsigned.
    secret text,
    enabled boolean NOT NULL DEFAULT true,
    write_source text NOT NULL DEFAULT 'api' CHECK (write_source IN ('ui', 'api', 'terraform')),
    -- The per-subscription circuit breaker, like a channel's.
    consecutive_failures integer NOT NULL DEFAULT 0,
    circuit_open_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_org_idx ON webhooks (org_id, created_at, id);

ALTER TABLE notifications
    ALTER COLUMN incident_id DROP NOT NULL,
    ALTER COLUMN channel_id DROP NOT NULL,
    ADD COLUMN webhook_id uuid REFERENCES webhooks (id) ON DELETE CASCADE,
    ADD COLUMN event text,
    ADD COLUMN event_id uuid,
    ADD COLUMN subject_id uuid,
    ADD COLUMN payload jsonb,
    -- The severity an alert rule gave this delivery (NULL: the incident's own).
    ADD COLUMN severity text CHECK (severity IN ('critical', 'major', 'minor')),
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check
        CHECK (kind IN ('open', 'reminder', 'recovery', 'event')),
    ADD CONSTRAINT notifications_shape_check CHECK (
        CASE WHEN kind = 'event'
             THEN webhook_id IS NOT NULL AND event IS NOT NULL AND event_id IS NOT NULL
                  AND payload IS NOT NULL AND channel_id IS NULL
             ELSE webhook_id IS NULL AND channel_id IS NOT NULL AND incident_id IS NOT NULL END);
CREATE INDEX notifications_webhook_idx ON notifications (webhook_id, subject_id, created_at)
    WHERE kind = 'event';
CREATE UNIQUE INDEX notifications_event_once_idx ON notifications (webhook_id, event_id)
    WHERE kind = 'event';

-- maintenance.started / maintenance.ended are announced once each, by the delivery job, when
-- the clock passes the window's start and end.
ALTER TABLE maintenance_windows
    ADD COLUMN started_announced boolean NOT NULL DEFAULT false,
    ADD COLUMN ended_announced boolean NOT NULL DEFAULT false;
-- Windows that ended before this migration are not announced now.
UPDATE maintenance_windows SET started_announced = true, ended_announced = true
WHERE ends_at <= now();
UPDATE maintenance_windows SET started_announced = true WHERE starts_at <= now();
CREATE INDEX maintenance_windows_unannounced_idx ON maintenance_windows (starts_at, ends_at)
    WHERE NOT ended_announced;

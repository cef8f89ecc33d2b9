-- Notification channels and their delivery pipeline: a transactional outbox.
--
-- The incident engine writes one ``notifications`` row per bound enabled channel in the
-- transaction that opens (``open``) or closes (``recovery``) an incident; the delivery job
-- writes ``reminder`` rows while an incident stays open and unacknowledged. The job claims due
-- rows with a lease (``lease_until``): a worker killed mid-delivery leaves a lease that expires
-- and the row is claimed again. Every attempt is one ``notification_attempts`` row.
ALTER TABLE channels
    -- Email channels are verification-gated: the hash of the single-use link's token, its
    -- expiry, and how many mails were sent today (``verify_day``) for the resend cap.
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN verify_token_hash bytea,
    ADD COLUMN verify_expires_at timestamptz,
    ADD COLUMN verify_sent integer NOT NULL DEFAULT 0,
    ADD COLUMN verify_day date,
    ADD COLUMN disabled_reason text,
    -- The per-channel circuit breaker: consecutive failed attempts, and until when it is open.
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN circuit_open_until timestamptz;

CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    incident_id uuid NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('open', 'reminder', 'recovery')),
    -- pending: waiting to be sent (or held); delivered; dead: gave up (dead letter);
    -- skipped: nothing to send any more (closed during maintenance, acknowledged reminder).
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead', 'skipped')),
    due_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    -- Sent as part of a grouped message (an alert storm on a chat channel).
    grouped boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz
);
-- One open and one recovery per incident and channel (a re-run of the engine adds nothing).
CREATE UNIQUE INDEX notifications_once_idx ON notifications (incident_id, channel_id, kind)
    WHERE kind <> 'reminder';
CREATE INDEX notifications_due_idx ON notifications (due_at) WHERE state = 'pending';
CREATE INDEX notifications_incident_idx ON notifications (incident_id, created_at);
CREATE INDEX notifications_channel_idx ON notifications (channel_id);

CREATE TABLE notification_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- delivered, retry (transient failure), dead (permanent failure or attempt cap), refused
    -- (SSRF guard, circuit open).
    outcome text NOT NULL,
    -- The HTTP status, or the SMTP reply code for email.
    status_code integer,
    latency_ms double precision,
    error text CHECK (length(error) <= 500)
);
CREATE INDEX notification_attempts_notification_idx ON notification_attempts (notification_id, at);

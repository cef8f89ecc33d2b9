-- Idempotency-Key answers (core/idempotency.py): the stored response of a write, kept 24 h,
-- keyed by (org, key, body hash) so the same key with another body executes normally.
CREATE TABLE idempotency_keys (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    body_hash bytea NOT NULL,
    scope text NOT NULL,
    status smallint NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, key, body_hash)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

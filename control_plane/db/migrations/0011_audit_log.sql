-- The audit log: every mutation of an org's resources, written in the transaction that makes
-- it, with who (an API key, later a user's session), what, on which resource, the resource
-- before and after (as reads show it: secrets already redacted), and the request it came from.
CREATE TABLE audit_log (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    -- 'api_key', 'session' or 'operator'; actor_id names the key, the user or nothing.
    actor_type text NOT NULL,
    actor_id uuid,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    before jsonb,
    after jsonb,
    request_id text,
    source_ip inet
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, at DESC, id DESC);

-- What a key may do (core/permissions.py): NULL is full access, as every key had until now.
ALTER TABLE api_tokens ADD COLUMN permissions text[];

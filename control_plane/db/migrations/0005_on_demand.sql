-- On-demand checks: POST /targets/test (a raw spec, nothing persisted but this job row) and
-- POST /targets/{id}/check-now (one job per region of the target, results persisted). Jobs go to
-- agents through the ordinary lease/ingest channel; the API call waits for ``state = 'done'``.
CREATE TABLE on_demand_checks (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- NULL for a /test job; a check-now job runs the target's stored spec and credentials.
    target_id uuid REFERENCES targets (id) ON DELETE CASCADE,
    region_id text NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    -- /test only: the spec without its secret fields, and those sealed (bound to the job id).
    spec jsonb,
    secrets jsonb NOT NULL DEFAULT '{}',
    timeout_ms integer NOT NULL,
    -- The slot the result is for: the request time, never on a whole second, so a check-now
    -- result can never collide with a grid slot (grid slots are whole seconds).
    scheduled_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done')),
    leased_by uuid,
    lease_expires_at timestamptz,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Nobody leases the job after this (the caller has given up waiting); rows are swept then.
    expires_at timestamptz NOT NULL,
    CHECK ((target_id IS NULL) = (spec IS NOT NULL))
);
-- The lease looks here first on every call: only jobs not done are indexed, so it stays tiny.
CREATE INDEX on_demand_open_idx ON on_demand_checks (region_id, created_at)
    WHERE state <> 'done';
CREATE INDEX on_demand_expires_idx ON on_demand_checks (expires_at);

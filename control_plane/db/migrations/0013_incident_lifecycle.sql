-- The incident lifecycle, its public narration, and maintenance windows: the schema the
-- incident-lifecycle work (acknowledge, resolve, narration, maintenance) and the status pages
-- share.
--
-- ``status`` stays what the engine saw (``down`` or ``degraded``); ``state`` is where people
-- are with it: ``open`` → ``acknowledged`` → ``resolved`` (resolved when it ends, or by hand).
ALTER TABLE incidents
    ADD COLUMN state text NOT NULL DEFAULT 'open'
        CHECK (state IN ('open', 'acknowledged', 'resolved')),
    -- NULL: derived from ``status`` (down: critical, degraded: minor) until someone sets it.
    ADD COLUMN severity text CHECK (severity IN ('critical', 'major', 'minor')),
    ADD COLUMN public_title text CHECK (length(public_title) <= 200),
    ADD COLUMN public_description text CHECK (length(public_description) <= 5000),
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by text,
    ADD COLUMN acknowledge_note text CHECK (length(acknowledge_note) <= 2000),
    ADD COLUMN resolved_at timestamptz,
    ADD COLUMN resolved_by text,
    ADD COLUMN resolve_note text CHECK (length(resolve_note) <= 2000),
    -- Opened while a maintenance window covered the target: its notifications are held.
    ADD COLUMN in_maintenance boolean NOT NULL DEFAULT false;
UPDATE incidents SET state = 'resolved', resolved_at = ended_at WHERE ended_at IS NOT NULL;
CREATE INDEX incidents_org_state_idx ON incidents (org_id, state);

-- The public timeline of an incident.
CREATE TABLE incident_updates (
    id uuid PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    phase text NOT NULL
        CHECK (phase IN ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem')),
    message text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text
);
CREATE INDEX incident_updates_incident_idx ON incident_updates (incident_id, created_at);

-- Planned work: notifications for the targets it covers are held while it lasts.
CREATE TABLE maintenance_windows (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    -- Every target of the org, else the targets in maintenance_targets.
    all_targets boolean NOT NULL DEFAULT false,
    write_source text NOT NULL DEFAULT 'api' CHECK (write_source IN ('ui', 'api', 'terraform')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_org_idx ON maintenance_windows (org_id, starts_at);

CREATE TABLE maintenance_targets (
    window_id uuid NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
    target_id uuid NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    PRIMARY KEY (window_id, target_id)
);
CREATE INDEX maintenance_targets_target_idx ON maintenance_targets (target_id);

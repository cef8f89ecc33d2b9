-- What the incident lifecycle needs beyond 0013.
--
-- The engine now resolves an incident when it ends (close_incident); incidents it closed after
-- 0013 and before that change are resolved here, at their end.
UPDATE incidents SET state = 'resolved', resolved_at = coalesce(resolved_at, ended_at)
WHERE ended_at IS NOT NULL AND state <> 'resolved';

-- The maintenance sweep looks only at incidents whose notifications are held.
CREATE INDEX incidents_in_maintenance_idx ON incidents (target_id) WHERE in_maintenance;

-- Windows that have not ended yet: what the engine checks when it opens an incident.
CREATE INDEX maintenance_windows_org_ends_idx ON maintenance_windows (org_id, ends_at);

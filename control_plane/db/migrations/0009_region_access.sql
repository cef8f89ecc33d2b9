-- Regions with an access list, and private-target permission per (region, org).
--
-- A region is ``public`` (every org may probe from it) or ``restricted`` (only the orgs granted
-- it). ``regions.allow_private_targets`` stays the region's own switch (its agents sit in a
-- network worth reaching), but on its own it no longer lets anyone probe private addresses: an
-- org needs a grant of the region with ``allow_private_targets`` too. Before, any org could put
-- a target in such a region and read internal services through it.
ALTER TABLE regions ADD COLUMN access text NOT NULL DEFAULT 'public'
    CHECK (access IN ('public', 'restricted'));

CREATE TABLE region_grants (
    region_id text NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    allow_private_targets boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region_id, org_id)
);
CREATE INDEX region_grants_org_idx ON region_grants (org_id);

-- The orgs that probe from a private-capable region today keep doing so, now by a grant; any
-- other org loses the private network it was never given.
INSERT INTO region_grants (region_id, org_id, allow_private_targets)
SELECT DISTINCT tr.region_id, t.org_id, true
FROM target_regions tr
JOIN targets t ON t.id = tr.target_id
JOIN regions r ON r.id = tr.region_id
WHERE r.allow_private_targets
ON CONFLICT DO NOTHING;

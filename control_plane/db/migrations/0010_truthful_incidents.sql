-- The incident engine's per-region state learns two more things:
-- * ``good_since``: the first good result of the current good run, so an incident ends at the
--   start of its recovery (as it starts at the first failure), not at the confirming result;
-- * ``failing_hard``: whether the current failing episode saw a hard failure (``down``), as
--   opposed to only a service that answers 429/503 without Retry-After (``UNAVAILABLE``): an
--   incident of the latter alone is ``degraded``, a lower severity than ``down``.
ALTER TABLE region_states ADD COLUMN good_since timestamptz;
ALTER TABLE region_states ADD COLUMN failing_hard boolean NOT NULL DEFAULT true;

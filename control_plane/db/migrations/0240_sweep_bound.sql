-- The missed-slot sweep's scan ends at the shortest interval of any target (issue 18): a slot is
-- missed once its own interval has passed, so no slot due more recently than the shortest
-- interval ago can be, and the sweep reads that bound through this index (its first entry) in
-- the statement that scans. Before, the scan ended 10 s ago (the shortest interval allowed) and,
-- when the system was behind, walked every due slot not yet missed (the whole backlog, a probe
-- of targets each) every second, only to skip them.
CREATE INDEX targets_interval_idx ON targets (interval_secs);

-- Dead tuples stay bounded on the two hottest tables (issue 18). At 3,000 checks/s every schedule
-- row is updated twice a check (lease, then ingest) and the evaluation queue is written and
-- emptied as fast; with the defaults (vacuum at 20% dead, throttled by the cost delay) the bench
-- found 189k dead versions beside 180k live ones in ``schedules`` and 150k dead beside 3k live in
-- ``evaluation_queue``, and every lease scan walked them.
--
-- * ``schedules``: room on each page (fillfactor 70) so an update that changes no indexed column
--   (the lease: leased_by, lease_expires_at) stays on its page as a HOT update, with no new index
--   entries, and its old version is pruned in place. Vacuum runs after a fixed number of dead
--   versions, not a share of the table, and unthrottled: the table is small (one row per target
--   and region) and a pass over it is cheap, a backlog of dead index entries is not.
-- * ``evaluation_queue`` (fillfactor 50 since 0007): the same vacuum settings; it holds a few
--   thousand live rows, so 20% would mean vacuuming after a few hundred and then, as it grows
--   with its dead, ever later.
--
-- Storage parameters only: a fillfactor applies to pages written from now on (VACUUM FULL or a
-- rewrite applies it to old ones). How often autovacuum looks at all is the server's
-- ``autovacuum_naptime`` (README, "Running PostgreSQL"); the bench runs with 5 s.
ALTER TABLE schedules SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);

ALTER TABLE evaluation_queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_cost_delay = 0
);

-- The dashboard's checks in flight per org, from a snapshot the worker takes every 5 s
-- (issue 16) instead of a join of the org's schedules and targets on every summary (12.5 ms
-- for 60,000 targets).
--
-- In flight: a schedule row whose lease is live (``lease_expires_at > now()``). That column
-- has no index and gets none: the lease and the ingest write it on every check, and an index
-- on it would end their HOT updates of the hot ``schedules`` table. So nothing on that path
-- changes: the worker's ``in_flight_snapshot`` job (dashboard/jobs.py) counts every org's
-- live leases in one pass of ``schedules`` and writes the counts that moved.
--
-- ``org_in_flight``: one row per org with leases in flight at ``in_flight_snapshot.taken_at``
-- (no row: none). No foreign key: a deleted org's row goes at the next snapshot, and the job
-- never fails on an org deleted while it counts. The summary takes the snapshot while it is
-- at most ``FRESH_SECS`` old and counts live otherwise (a worker that is down or behind costs
-- the summary its old price, never a stale figure past the bound).
CREATE TABLE org_in_flight (
    org_id uuid PRIMARY KEY,
    n integer NOT NULL
);

CREATE TABLE in_flight_snapshot (
    id smallint PRIMARY KEY CHECK (id = 1),
    -- The database time the counts were taken at; NULL: never.
    taken_at timestamptz
);
INSERT INTO in_flight_snapshot (id, taken_at) VALUES (1, NULL);

-- Incremental rollups (issue 18). The rollup job recomputed, every 15 s, every minute of every
-- target from its previous settled point on (about four slots per target and region a run): at
-- 1,500 checks/s the largest single item of PostgreSQL's CPU per check (0.12-0.13 ms of 0.28).
-- It now recomputes only the minutes that got rows since its previous run, found by when the rows
-- arrived (``results.received_at``: the writing transaction's now(), set again when a real result
-- replaces a ``missed`` placeholder), see control_plane/domain/results/rollups.py.
--
-- * A BRIN index on ``received_at``: rows are appended about in arrival order, so a range of
--   128 pages has a narrow min/max and a run reads only the pages written since its previous
--   one; a BRIN index costs ingest next to nothing (no B-tree entry per row). Declared on the
--   partitioned table, so every partition, existing or made later by
--   vigil_ensure_result_partitions, has one. ``autosummarize``: a filled range is summarized by
--   autovacuum soon after, instead of at the next vacuum of the partition (unsummarized ranges
--   are read by every scan).
-- * ``rollup_state.received_to``: the arrival watermark. Every row that arrived before it is in
--   the rollups. Separate from ``ran_at``, which readers use to tell settled minutes and which a
--   schedule left behind may hold back. On an upgrade it starts at ``ran_at`` (every row
--   committed before ran_at was rolled up).
CREATE INDEX results_received_at_brin ON results USING brin (received_at)
    WITH (autosummarize = on);

ALTER TABLE rollup_state ADD COLUMN received_to timestamptz;
UPDATE rollup_state SET received_to = ran_at WHERE id = 1;

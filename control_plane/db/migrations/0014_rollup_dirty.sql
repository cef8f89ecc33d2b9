-- Minutes a late result landed in after the rollups had settled them (an agent's spool drained
-- after a long API outage): ingest marks them, the next rollup run recomputes them and their
-- hours, so the rollups keep counting exactly what the raw results hold after any outage.
CREATE TABLE rollup_dirty (
    target_id uuid NOT NULL,
    minute timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, minute)
);

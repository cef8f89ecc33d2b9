-- The BRIN index on results.received_at (0190) is exact only over summarized page ranges: a range
-- never summarized is read whole by every scan. ``autosummarize`` asks autovacuum to summarize a
-- filled range, but its queue of such requests is small (excess ones are dropped) and is worked
-- only when a worker visits the database; a plain VACUUM summarizes the rest, and an insert-only
-- partition is vacuumed after a fifth of its size was inserted. So the rollup job summarizes the
-- new ranges itself before it scans (rollups.py): it reads the pages written since its previous
-- run, which it reads anyway, and every scan stays to them.
--
-- Summarizing takes the partition's SHARE UPDATE EXCLUSIVE lock (ingest's inserts do not conflict
-- with it, VACUUM and ANALYZE do): waited for at most 50 ms, below deadlock_timeout, so a running
-- autovacuum is never cancelled for it; that partition is then left as it is (the vacuum
-- summarizes it as it ends).
CREATE FUNCTION vigil_summarize_received() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    idx regclass;
    made integer := 0;
BEGIN
    FOR idx IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent = 'results_received_at_brin'::regclass
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            made := made + brin_summarize_new_values(idx);
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    RETURN made;
END $$;

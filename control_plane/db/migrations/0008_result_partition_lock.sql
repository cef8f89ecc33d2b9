-- Two workers ensuring the same raw-result partitions at once could both find a day missing and
-- both create it (one fails with "already exists"). Creating them now takes a transaction-scoped
-- advisory lock first, like vigil_ensure_rollup_partitions; otherwise unchanged.
CREATE OR REPLACE FUNCTION vigil_ensure_result_partitions(from_day date, days integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made integer := 0;
    name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vigil_result_partitions'));
    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        name := 'results_' || to_char(d, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF results FOR VALUES FROM (%L) TO (%L)',
                name, d::timestamptz, (d + 1)::timestamptz);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

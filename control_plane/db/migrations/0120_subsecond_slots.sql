-- No bursts (issue 18): every slot fell on a whole second, so the N/60 checks of a second all
-- came due at the same instant and p99 start lateness was set by those bursts. Each target now
-- also has a stable sub-second offset (whole milliseconds, from other bits of the same hash), so
-- the checks of a second are spread over it.
--
-- The whole-second part of the offset is unchanged: a slot of the new grid is the old one plus
-- under a second, in the same second and therefore the same minute (rollup minutes hold), and a
-- schedule moves by less than a second when it is realigned below. Grid points are whole
-- milliseconds, so a check-now result (nudged off the millisecond in ondemand/queries.sql) can
-- never take a grid slot's place in results.
--
-- The offset is numeric seconds with three decimals (was bigint seconds): ``* 0.001`` keeps its
-- scale at 3, so the arithmetic in vigil_next_slot stays exact and cheap. Both functions stay
-- IMMUTABLE with immutable bodies only (hashtextextended, uuid_out, integer and numeric
-- arithmetic), so the planner keeps inlining them (0007).
DROP FUNCTION vigil_slot_offset(uuid, integer);

CREATE FUNCTION vigil_slot_offset(target uuid, interval_secs integer) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashtextextended(target::text, 0) & 9223372036854775807) % interval_secs
           + ((hashtextextended(target::text, 0) & 9223372036854775807) >> 40) % 1000 * 0.001
$$;

-- Same body as 0007: re-created so that it is planned against the new offset's type.
CREATE OR REPLACE FUNCTION vigil_next_slot(target uuid, interval_secs integer, after timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(
        ceil((extract(epoch FROM after - to_timestamp(0)) - vigil_slot_offset(target, interval_secs))
             / interval_secs) * interval_secs + vigil_slot_offset(target, interval_secs))
$$;

-- Existing schedules move onto the new grid: the next new point at or after their slot, which is
-- under a second later for a slot on the old grid. A slot under a live lease is left alone: its
-- agent's result must still match ``next_due_at`` at ingest, which then advances it onto the new
-- grid (that one target runs its next slot once within the same second; a handful per deploy).
UPDATE schedules s
SET next_due_at = vigil_next_slot(s.target_id, t.interval_secs, s.next_due_at)
FROM targets t
WHERE t.id = s.target_id
  AND (s.lease_expires_at IS NULL OR s.lease_expires_at < now())
  AND s.next_due_at <> vigil_next_slot(s.target_id, t.interval_secs, s.next_due_at);

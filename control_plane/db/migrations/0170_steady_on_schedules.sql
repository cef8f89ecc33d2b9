-- Three row writes per steady check (issue 18): the result, the schedule row at lease and the
-- schedule row at ingest. A steady ``up`` (the region was up, not failing, its good run already
-- at ``alert_confirmations``, nothing unevaluated in between, no open incident) changes nothing
-- of the evaluation's state but its watermarks (``evaluated_to`` = ``last_reported_at`` = the
-- slot): its counters are saturated (policy.apply_result caps the good run at the
-- confirmations). Ingest used to write those watermarks into ``region_states``, a fourth row
-- write per check; it now keeps them in the schedule row it updates anyway, as ``steady_to``
-- (no index: the update stays HOT).
--
-- The invariant: when ``steady_to`` is past ``region_states.evaluated_to`` and the region state
-- is saturated-up (``vigil_region_steady``), every result of the region in
-- (``evaluated_to``, ``steady_to``] is such a steady ``up``. The region's effective state is
-- then its ``region_states`` row with both watermarks at ``steady_to``: the engine reads it so
-- (engine.sql, region_states), ingest tests the next result against it, and the engine's next
-- save of the region writes it back. Any other case (the confirmations were raised, the state
-- changed) ignores ``steady_to``, and the engine re-reads the results from ``evaluated_to``,
-- which gives the same state: folding saturated ups changes only the watermarks.
ALTER TABLE schedules ADD COLUMN steady_to timestamptz;

-- Whether a region state is a saturated, steady ``up``: another ``up`` changes nothing but its
-- watermarks. Inlined by the planner (plain SQL, IMMUTABLE).
CREATE FUNCTION vigil_region_steady(last_status text, failing boolean, consecutive_bad integer,
                                    consecutive_good integer, confirmations integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT last_status = 'up' AND NOT failing AND consecutive_bad = 0
           AND consecutive_good >= confirmations
$$;

-- A schedule row goes away (pause, heartbeat kind, region unassigned): its watermarks go back
-- into the region state first, so that nothing that reads ``region_states`` alone (a paused
-- target's last check in ``target_status``) sees an older one. Once per removal, not per check.
CREATE FUNCTION vigil_schedule_flush_steady() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE region_states rs
    SET evaluated_to = OLD.steady_to, last_reported_at = OLD.steady_to
    FROM targets t
    WHERE rs.target_id = OLD.target_id AND rs.region_id = OLD.region_id AND t.id = OLD.target_id
      AND OLD.steady_to > coalesce(rs.evaluated_to, '-infinity')
      AND vigil_region_steady(rs.last_status, rs.failing, rs.consecutive_bad,
                              rs.consecutive_good, t.alert_confirmations);
    RETURN OLD;
END $$;

CREATE TRIGGER schedules_flush_steady BEFORE DELETE ON schedules
    FOR EACH ROW WHEN (OLD.steady_to IS NOT NULL)
    EXECUTE FUNCTION vigil_schedule_flush_steady();

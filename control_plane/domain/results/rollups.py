"""Per-minute rollups of raw results (``result_rollups``), kept by a worker job every 15 s.

Lateness. Rows of a slot ``S`` of a target with interval ``I`` are written late:

* a real result arrives while its lease lives: the slot is leased before ``S + I`` (after that
  the missed-slot sweep moves the schedule on), the lease lives ``timeout + LEASE_GRACE_SECS``,
  and ingest accepts a ``finished_at`` up to ``CLOCK_SKEW`` past the lease's expiry;
* the ``missed`` placeholder is written by the 1 s sweep once ``S + I`` has passed and no live
  lease holds the slot, and a real result may still replace it within the same bound;
* an on-demand check-now result lands at its job's time within the job's timeout.

So every row of slot ``S`` is committed before ``S + I + MARGIN_SECS`` (MARGIN_SECS covers the
longest timeout, the grace, the skew, and a minute of slack). The job records the database time
at which the run started (``rollup_state.ran_at``): every row committed before it is in the
rollups, and a target's minutes before ``settled_until = floor_minute(ran_at - (I +
MARGIN_SECS))`` can no longer change; readers take those from rollups and the rest from raw rows
(``control_plane/domain/results/service.py``).

Incremental runs. A run looks only at the rows that arrived since the previous run: those whose
``received_at`` (the writing transaction's now(), stamped again when a real result replaces a
``missed`` placeholder) is at or past the arrival watermark ``rollup_state.received_to``, found
through a BRIN index on ``received_at`` (0190; the run first summarizes the ranges written since its
previous one, 0191), aggregated per (target, region, minute) in the same pass. A minute with no
rollup row yet had no row before (every row that arrived before the watermark is rolled up), so that
aggregate is the whole minute and is inserted (ON CONFLICT DO NOTHING tells the others apart): the
common case, one check of a target per minute. A minute that has a row already (a second check in
it, a placeholder replaced, a late row) is recomputed whole from its raw rows: counts and means
could be merged, the quantiles (percentile_cont of the minute's latencies) cannot, so a minute row
is always what a from-scratch computation gives, and a late row (an old slot received now) is
counted in its own minute, whatever its age (its hour is rebuilt if it was written already). Before,
every run recomputed every target's minutes from its previous settled point, about four slots per
target and region a run, received or not.

Arrivals. The watermark must not pass a row this run could not see: a write in flight when the
run read the rows commits later with a ``received_at`` (its transaction's start) from before.
So the next watermark is the run's start, held to the start of the oldest transaction open in
the database (``in_flight``, below), minus ``ARRIVAL_LAG`` (1 s) for the instant between a
backend taking its transaction's timestamp and publishing it in ``pg_stat_activity``. The scan
has no upper bound: rows that arrived after the cut-off and are already visible are counted now
and looked at again next run (recomputing a minute twice is harmless; missing one is not). A
plain lag without ``in_flight`` would not do: a transaction slowed down on a loaded machine can
stay open longer than any fixed lag.

Hours: once a run moves a target's settled point past the end of an hour, that hour is written
to ``result_rollups_hourly`` from its (final) minute rows, so hours before
``floor_hour(settled_until)`` are there; long ranges read those.

Every write still to come for a (target, region) is for its slot ``next_due_at`` or later, so
the watermark is also held to ``next_due_at + I + MARGIN_SECS`` of every schedule: a schedule left
behind (the worker was down, an interval was shortened, a slot keeps being leased and never
answered) keeps those minutes unsettled until the sweep has written its placeholders, and the
next runs recompute them. Normally nothing is held. A first run, or one more than a day after
the watermark, recomputes everything since the watermark in day-sized chunks.

Late results. A result committed after its minute settled (an agent's spool drained after an
outage longer than ``I + MARGIN_SECS``) is found by its arrival: an incremental run reads every row
received since the arrival watermark, whatever its slot's age, and recomputes its minute and hour.
A catch-up run (the first, or one more than a day after the previous) recomputes by slot time from
the previous settled point on; the rows that arrived since the arrival watermark for slots before
that are found by ``received_at`` as well (``mark_late_arrivals``) and their minutes marked in
``rollup_dirty``, which every run recomputes first with their hours (``recompute_dirty``). So the
rollups count what the raw results hold after any outage, one run (15 s) later, and ingest
writes nothing for it. The settled point is also held to the start of the oldest transaction
open in the database (``pg_stat_activity``; the sessions of the application's role are visible to
it): readers then never take a minute from the rollups while a write into it may still commit.

Known gap: the settled point uses the target's current interval. Shortening the interval of a
target whose slot is held by a lease taken long (more than the new interval plus the margin)
after the slot was due, and never answered, can make that slot's placeholders land in minutes
already settled; the rollups then miss them until a recompute (``rollup_range``).

Cost: one run reads the rows that arrived since the previous one (plus a second), then each of
their minutes once, and rewrites only the minutes whose aggregates changed; targets that got no
row cost nothing. Ingest is untouched (a BRIN index adds no per-row entry).

Retention. Raw daily partitions expire after ``VIGIL_RAW_RETENTION_DAYS`` and minute-rollup daily
partitions (``result_rollups_YYYYMMDD``) after ``VIGIL_MINUTE_ROLLUP_RETENTION_DAYS``, in both
cases only days before the day of the settled point of the longest interval, so a day is rolled up
(minutes, and hours) before its raw rows go, and its hours are written before its minutes go.
Hourly rollups are kept forever. ``rollup_state.minutes_from`` records where the kept minutes
start; reads take anything before it from the hourly rows (service.py says how edges are read).

Idempotent and safe with several workers: a run holds a try-advisory lock (a second worker skips),
the recompute is deterministic, and both watermarks only move forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from psycopg import AsyncConnection

from control_plane.db.sql import Queries
from control_plane.domain.agent_api.windows import SETTLE_MARGIN_SECS

log = structlog.get_logger("vigil.rollups")
Q = Queries.beside(__file__, "rollups")

MARGIN_SECS = SETTLE_MARGIN_SECS
# A run further behind than this (or a first run) backfills in chunks of this size.
CHUNK = timedelta(days=1)
# "vigil-rollups": one run at a time across workers.
ADVISORY_LOCK_KEY = 0x766967696C02
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# How far the arrival watermark stays behind the run's transaction-safe cut-off (see "Arrivals"
# in the module docstring): rows that arrived in the last second are looked at again next run.
ARRIVAL_LAG = timedelta(seconds=1)
# Before any result: the "previous settled point" of a first run.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == t else f + HOUR


def ceil_minute(t: datetime) -> datetime:
    f = floor_minute(t)
    return f if f == t else f + MINUTE


def settled_until(ran_at: datetime | None, interval_secs: int) -> datetime | None:
    """Minutes of a target before this are final in the rollups, and hours before its hour are in
    the hourly rollups (None: nothing is)."""
    if ran_at is None:
        return None
    return floor_minute(ran_at - timedelta(seconds=interval_secs + MARGIN_SECS))


@dataclass(frozen=True, slots=True)
class RollupRun:
    ran: bool
    # Minute rows written (changed) by the run, and hourly rows.
    rows_written: int = 0
    hours_written: int = 0
    watermark: datetime | None = None
    advanced: bool = False


async def rollup_range(conn: AsyncConnection[Any], lo: datetime, hi: datetime) -> int:
    """Recompute every minute of every target in [lo, hi), a day at a time; rows written."""
    written = 0
    start = floor_minute(lo)
    while start < hi:
        stop = min(start + CHUNK, hi)
        cur = await conn.execute(
            Q.rollup_minutes, {"since": start, "margin": MARGIN_SECS, "lo": start, "hi": stop}
        )
        written += max(cur.rowcount, 0)
        start = stop
    return written


# Dirty minutes recomputed per statement (a spool of a long outage can mark many).
DIRTY_BATCH = 5000


async def recompute_dirty(conn: AsyncConnection[Any], touched: set[Any] | None = None) -> int:
    """Recompute the minutes (and their hours) late results were marked in; rows written. The
    targets whose hours were rebuilt are added to ``touched``."""
    written = 0
    while True:
        rows = await (await conn.execute(Q.rollup_dirty_minutes, {"limit": DIRTY_BATCH})).fetchall()
        if not rows:
            return written
        written += int(rows[0]["written"])
        await conn.execute(
            Q.rollup_hours_of,
            {"target_ids": [r["target_id"] for r in rows], "hours": [r["hour"] for r in rows]},
        )
        if touched is not None:
            touched.update(r["target_id"] for r in rows)
        log.info("rollups_late_results", minutes=len(rows), rows=written)
        if len(rows) < DIRTY_BATCH:
            return written


async def refresh_last_24h(conn: AsyncConnection[Any], touched: set[Any]) -> None:
    """Keep ``target_last_24h`` (what target reads show as ``last_24h``): every target's row
    when the window moved to the next hour since the last full pass, else the rows of the
    targets whose hourly rollups this run wrote."""
    window = await (await conn.execute(Q.day_window)).fetchone()
    assert window is not None
    if window["done"] != window["since"]:
        await conn.execute(Q.refresh_last_24h, {"since": window["since"], "ids": None})
        await conn.execute(Q.mark_day_window, {"since": window["since"]})
    elif touched:
        await conn.execute(Q.refresh_last_24h, {"since": window["since"], "ids": list(touched)})


async def run_rollups(conn: AsyncConnection[Any]) -> RollupRun:
    """One run of the rollup job on an autocommit connection (see the module docstring)."""
    got = await (
        await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (ADVISORY_LOCK_KEY,))
    ).fetchone()
    if not got or not got["ok"]:
        return RollupRun(ran=False)
    try:
        touched: set[Any] = set()
        state = await (await conn.execute(Q.rollup_state)).fetchone()
        assert state is not None
        prev: datetime | None = state["ran_at"]
        now: datetime = state["now"]
        in_flight: datetime | None = state["in_flight"]
        received_to: datetime | None = state["received_to"]
        longest = timedelta(seconds=int(state["max_interval"]) + MARGIN_SECS)
        if prev is not None and now - prev > CHUNK:
            # A catch-up run recomputes by slot time from ``prev - longest`` on: the rows that
            # arrived since the arrival watermark for older slots are marked, by arrival.
            await conn.execute("SELECT vigil_summarize_received()")
            await conn.execute(
                Q.mark_late_arrivals,
                {"since": received_to if received_to is not None else prev, "lo": prev - longest},
            )
        late = await recompute_dirty(conn, touched)
        # Checked before the recompute: writes a schedule left behind still owes land after it.
        held = await (await conn.execute(Q.watermark_hold, {"margin": MARGIN_SECS})).fetchone()
        hold: datetime | None = held["hold"] if held else None
        if prev is None or now - prev > CHUNK:
            if prev is not None:
                lo: datetime | None = prev - longest
            else:
                row = await (await conn.execute(Q.first_result)).fetchone()
                lo = row["first"] if row else None
            # Up to a minute past now: the current minute's rows are in too.
            written = await rollup_range(conn, lo, now + MINUTE) if lo is not None else 0
        else:
            lo = prev - longest
            # Incremental: only the minutes that got rows since the arrival watermark.
            since = received_to if received_to is not None else prev
            # The BRIN ranges written since the previous run, summarized (0191): else the scan
            # reads every range autovacuum has not summarized yet, whole.
            await conn.execute("SELECT vigil_summarize_received()")
            fresh = await (
                await conn.execute(
                    Q.rollup_fresh_minutes, {"since": since, "prev": prev, "margin": MARGIN_SECS}
                )
            ).fetchone()
            assert fresh is not None
            written = int(fresh["written"])
            settled = list(zip(fresh["target_ids"], fresh["hours"], strict=True))
            if fresh["known_targets"]:
                known = await (
                    await conn.execute(
                        Q.rollup_known_minutes,
                        {
                            "targets": fresh["known_targets"],
                            "regions": fresh["known_regions"],
                            "minutes": fresh["known_minutes"],
                            "prev": prev,
                            "margin": MARGIN_SECS,
                        },
                    )
                ).fetchone()
                assert known is not None
                written += int(known["written"])
                settled += zip(known["target_ids"], known["hours"], strict=True)
            if settled:
                # Late rows in hours already written: those hours again, from their minutes.
                pairs = sorted(set(settled))
                await conn.execute(
                    Q.rollup_hours_of,
                    {"target_ids": [p[0] for p in pairs], "hours": [p[1] for p in pairs]},
                )
                touched.update(p[0] for p in pairs)
        # The next run's arrival watermark: no row this run missed arrived before it.
        cut = now if in_flight is None else min(now, in_flight)
        cut -= ARRIVAL_LAG
        mark = now if hold is None else min(now, hold)
        if mark < now:
            log.info("rollup_watermark_held", at=mark.isoformat(), reason="schedule behind")
        if in_flight is not None and in_flight < mark:
            # A write begun before this run may commit after it read the rows: settle nothing
            # past its start (readers would take its minute from rollups that lack it).
            mark = in_flight
        advanced = mark == now
        hours = 0
        if lo is not None and (prev is None or mark > prev):
            # The hours settled by this run, from the minute rows just written.
            cur = await conn.execute(
                Q.rollup_hours,
                {
                    "since": prev if prev is not None else EPOCH,
                    "until": mark,
                    "margin": MARGIN_SECS,
                    "lo": floor_hour(lo),
                    "hi": floor_hour(mark),
                },
            )
            hours = max(cur.rowcount, 0)
            touched.update(r["target_id"] for r in await cur.fetchall())
        await refresh_last_24h(conn, touched)
        # The dashboard's last 24 h per org: the deltas the refresh appended, folded to one row.
        await conn.execute(Q.compact_org_last_24h)
        # The dashboard's status totals: each org's delta rows folded to one per status.
        await conn.execute(Q.compact_org_status_counts)
        await conn.execute(Q.advance_watermark, {"ran_at": mark, "received_to": cut})
        return RollupRun(
            ran=True,
            rows_written=written + late,
            hours_written=hours,
            watermark=mark,
            advanced=advanced,
        )
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


async def _drop_expired(conn: AsyncConnection[Any], query: str, retention_days: int) -> int:
    if retention_days <= 0:
        return 0
    state = await (await conn.execute(Q.rollup_state)).fetchone()
    assert state is not None
    row = await (
        await conn.execute(
            query,
            {
                "retention_days": retention_days,
                "longest_secs": int(state["max_interval"]) + MARGIN_SECS,
            },
        )
    ).fetchone()
    return int(row["dropped"]) if row else 0


async def drop_expired_raw(conn: AsyncConnection[Any], retention_days: int) -> int:
    """Drop the raw daily partitions older than ``retention_days`` that the rollups already
    cover (0: keep everything). Returns how many were dropped."""
    return await _drop_expired(conn, Q.drop_expired_partitions, retention_days)


async def drop_expired_minutes(conn: AsyncConnection[Any], retention_days: int) -> int:
    """Drop the minute-rollup daily partitions older than ``retention_days`` whose hours are
    already in ``result_rollups_hourly`` (0: keep everything), and the default partition's rows
    of those days; moves ``rollup_state.minutes_from`` to the cut-off. Returns how many
    partitions were dropped."""
    return await _drop_expired(conn, Q.drop_expired_minutes, retention_days)

"""Worker jobs. Each is idempotent: running one twice, or in two workers at once, is harmless."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from control_plane.db.sql import Queries
from control_plane.domain.heartbeats.sweep import sweep_overdue
from control_plane.monitoring.evaluate import evaluate_batch
from control_plane.monitoring.rollups import drop_expired_minutes, drop_expired_raw, run_rollups
from control_plane.state import Resources

log = structlog.get_logger("vigil.worker")
QM = Queries("monitoring")
QE = Queries("evaluation")

SWEEP_BATCH = 2000
# Missed placeholders written per slot row per sweep at most (an agentless day at 60 s = 1440).
MAX_MISSED_SLOTS = 1440
# Marks older than this are evaluated by the sweep (a lost job, or a result that came in while
# the target's evaluation was running).
STALE_MARK_SECS = 2


def _res(ctx: dict[str, Any]) -> Resources:
    res: Resources = ctx["resources"]
    return res


async def evaluate_targets(ctx: dict[str, Any], target_ids: list[str]) -> int:
    """Evaluate each target once, a chunk of targets per transaction; returns how many incidents
    opened or closed."""
    changes = 0
    async with _res(ctx).db.connection() as conn:
        outcomes = await evaluate_batch(conn, [uuid.UUID(tid) for tid in target_ids])
    for tid, outcome in outcomes.items():
        if outcome.opened:
            log.info("incident_opened", target_id=str(tid), incident_id=str(outcome.opened))
            changes += 1
        if outcome.closed:
            log.info("incident_closed", target_id=str(tid), incident_id=str(outcome.closed))
            changes += 1
    return changes


async def sweep_missed(res: Resources) -> int:
    total = 0
    async with res.db.connection() as conn:
        while True:
            row = await (
                await conn.execute(
                    QM.sweep_missed, {"limit": SWEEP_BATCH, "max_slots": MAX_MISSED_SLOTS}
                )
            ).fetchone()
            moved = int(row["moved"]) if row else 0
            total += int(row["missed"]) if row else 0
            if moved < SWEEP_BATCH:
                return total


async def sweep_marks(ctx: dict[str, Any]) -> None:
    res = _res(ctx)
    async with res.db.connection() as conn:
        rows = await (
            await conn.execute(
                QE.stale_markers, {"older_than_secs": STALE_MARK_SECS, "limit": SWEEP_BATCH}
            )
        ).fetchall()
    if rows:
        await evaluate_targets(ctx, [str(r["target_id"]) for r in rows])


async def ensure_partitions(res: Resources) -> None:
    """Daily partitions ahead (raw results and minute rollups, the same days); partitions past
    retention dropped: raw ones once rolled up, minute ones once their hours are written."""
    async with res.db.connection() as conn:
        await conn.execute(
            "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9)"
        )
        await conn.execute(
            "SELECT vigil_ensure_rollup_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9)"
        )
        dropped = await drop_expired_raw(conn, res.settings.database.raw_retention_days)
        minutes = await drop_expired_minutes(
            conn, res.settings.database.minute_rollup_retention_days
        )
    if dropped:
        log.info("raw_partitions_dropped", count=dropped)
    if minutes:
        log.info("minute_rollup_partitions_dropped", count=minutes)


async def sweep(ctx: dict[str, Any]) -> None:
    """Every second: missed slots, evaluations left behind; now and then, partitions."""
    res = _res(ctx)
    missed = await sweep_missed(res)
    if missed:
        log.info("slots_missed", count=missed)
    await sweep_overdue(res)
    await sweep_marks(ctx)
    ctx["sweeps"] = ctx.get("sweeps", 0) + 1
    if ctx["sweeps"] % 600 == 1:
        await ensure_partitions(res)


async def rollup(ctx: dict[str, Any]) -> None:
    """Every 15 s: recompute the recent per-minute rollups and advance their watermark."""
    async with _res(ctx).db.connection() as conn:
        run = await run_rollups(conn)
    if run.ran and run.rows_written:
        log.debug("rollups_written", rows=run.rows_written, advanced=run.advanced)

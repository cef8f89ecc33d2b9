"""The results' jobs: rollups every 15 s, and daily partitions made ahead and expired."""

from __future__ import annotations

from typing import Any

import structlog

from control_plane.core.queue import job_resources
from control_plane.core.state import Resources

from .rollups import drop_expired_minutes, drop_expired_raw, run_rollups

log = structlog.get_logger("vigil.results")


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


async def rollup(ctx: dict[str, Any]) -> None:
    """Every 15 s: recompute the recent per-minute rollups and advance their watermark."""
    async with job_resources(ctx).db.connection() as conn:
        run = await run_rollups(conn)
    if run.ran and run.rows_written:
        log.debug("rollups_written", rows=run.rows_written, advanced=run.advanced)

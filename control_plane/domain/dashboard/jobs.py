"""The dashboard's worker job: every org's checks in flight, every 5 s (in_flight.py)."""

from __future__ import annotations

from typing import Any

import structlog

from control_plane.core.queue import job_resources

from .in_flight import take_snapshot

log = structlog.get_logger("vigil.dashboard")


async def snapshot_in_flight(ctx: dict[str, Any]) -> None:
    async with job_resources(ctx).db.connection() as conn:
        got = await take_snapshot(conn)
    log.debug("in_flight_snapshot", orgs=got["orgs"], written=got["written"])

"""Reads of raw results: one target's results and its uptime over a range, scoped by org."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries
from control_plane.domain.targets.service import target_not_found

from .schemas import CheckResultOut, PhaseTimings, Uptime

Q = Queries("reads")


async def ensure_target(
    conn: AsyncConnection[Any], org_id: uuid.UUID, target_id: uuid.UUID
) -> None:
    """Another org's target, or none at all: 404 either way."""
    row = await (
        await conn.execute(Q.target_owned, {"target_id": target_id, "org_id": org_id})
    ).fetchone()
    if row is None:
        raise target_not_found()


def _result(row: dict[str, Any]) -> CheckResultOut:
    return CheckResultOut(
        target_id=row["target_id"],
        region=row["region_id"],
        timestamp=row["scheduled_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        latency_ms=row["latency_ms"],
        status_code=row["status_code"],
        error=row["error"],
        error_code=row["error_code"],
        timings=PhaseTimings(
            dns_ms=row["dns_ms"],
            connect_ms=row["connect_ms"],
            tls_ms=row["tls_ms"],
            ttfb_ms=row["ttfb_ms"],
            total_ms=row["latency_ms"],
        ),
        details=row["details"] or {},
    )


async def results_page(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    region: str | None,
    limit: int,
    offset: int,
) -> tuple[list[CheckResultOut], int]:
    await ensure_target(conn, org_id, target_id)
    params = {
        "target_id": target_id,
        "org_id": org_id,
        "from": start,
        "to": end,
        "region": region,
        "limit": limit,
        "offset": offset,
    }
    rows = await (await conn.execute(Q.results_page, params)).fetchall()
    if rows:
        total = int(rows[0]["total"])
    else:
        count = await (await conn.execute(Q.results_count, params)).fetchone()
        total = int(count["total"]) if count else 0
    return [_result(r) for r in rows], total


async def uptime(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    region: str | None,
) -> Uptime:
    await ensure_target(conn, org_id, target_id)
    params = {"target_id": target_id, "org_id": org_id, "from": start, "to": end, "region": region}
    row = await (await conn.execute(Q.uptime, params)).fetchone()
    assert row is not None
    total = int(row["total"])
    good = int(row["up"]) + int(row["degraded"])
    return Uptime(
        total=total,
        up=int(row["up"]),
        down=int(row["down"]),
        degraded=int(row["degraded"]),
        error=int(row["error"]),
        missed=int(row["missed"]),
        uptime_pct=round(100.0 * good / total, 3) if total else None,
    )

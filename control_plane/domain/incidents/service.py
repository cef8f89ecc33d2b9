"""Reads of incidents, for one target or the whole org."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries

from .schemas import Incident

Q = Queries("reads")


def _incident(row: dict[str, Any]) -> Incident:
    ended = row["ended_at"]
    return Incident(
        id=row["id"],
        target_id=row["target_id"],
        started_at=row["started_at"],
        ended_at=ended,
        status=row["status"],
        duration_secs=int((ended - row["started_at"]).total_seconds()) if ended else None,
        check_count=row["check_count"],
        error_sample=row["cause"],
        regions=list(row["regions"]),
    )


async def incidents_page(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    *,
    target_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
    ongoing_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[Incident], int]:
    params = {
        "org_id": org_id,
        "target_id": target_id,
        "from": start,
        "to": end,
        "ongoing_only": ongoing_only,
        "limit": limit,
        "offset": offset,
    }
    rows = await (await conn.execute(Q.incidents_page, params)).fetchall()
    if rows:
        total = int(rows[0]["total"])
    else:
        count = await (await conn.execute(Q.incidents_count, params)).fetchone()
        total = int(count["total"]) if count else 0
    return [_incident(r) for r in rows], total

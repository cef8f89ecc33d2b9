"""Rows the public tests need that only the worker or the engine would write: rollups,
incidents with their narration and updates, maintenance windows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from control_plane.core.ids import new_id


async def _conn(db_url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(db_url, autocommit=True)


async def hourly(
    db_url: str,
    org_id: Any,
    target_id: str,
    hour: datetime,
    *,
    up: int,
    down: int = 0,
    p50: float = 40.0,
) -> None:
    async with await _conn(db_url) as conn:
        await conn.execute(
            "INSERT INTO result_rollups_hourly (target_id, region_id, hour, org_id, total, up,"
            " down, degraded, error, missed, samples, latency_p50, latency_p95, latency_p99,"
            " latency_avg) VALUES (%s, 'default', %s, %s, %s, %s, %s, 0, 0, 0, %s, %s, %s, %s, %s)",
            (target_id, hour, org_id, up + down, up, down, up + down, p50, p50 * 2, p50 * 3, p50),
        )


async def incident(
    db_url: str,
    org_id: Any,
    target_id: str,
    *,
    status: str = "down",
    started: datetime | None = None,
    ended: datetime | None = None,
    title: str | None = None,
    cause: str = "connect to secret-host.internal.example failed",
    updates: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> str:
    iid = new_id()
    started = started or datetime.now(UTC) - timedelta(minutes=30)
    async with await _conn(db_url) as conn:
        await conn.execute(
            "INSERT INTO incidents (id, org_id, target_id, started_at, ended_at, status, cause,"
            " public_title, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                iid,
                org_id,
                target_id,
                started,
                ended,
                status,
                cause,
                title,
                "resolved" if ended else "open",
            ),
        )
        for i, (phase, message) in enumerate(updates):
            await conn.execute(
                "INSERT INTO incident_updates (id, incident_id, org_id, phase, message,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (new_id(), iid, org_id, phase, message, started + timedelta(minutes=i + 1)),
            )
    return str(iid)


async def maintenance(
    db_url: str,
    org_id: Any,
    target_ids: list[str],
    *,
    title: str,
    active: bool = True,
    all_targets: bool = False,
) -> str:
    wid = uuid.uuid4()
    now = datetime.now(UTC)
    start = now - timedelta(minutes=5) if active else now + timedelta(days=1)
    async with await _conn(db_url) as conn:
        await conn.execute(
            "INSERT INTO maintenance_windows (id, org_id, title, description, starts_at,"
            " ends_at, all_targets) VALUES (%s, %s, %s, 'Planned work', %s, %s, %s)",
            (wid, org_id, title, start, start + timedelta(hours=2), all_targets),
        )
        for t in target_ids:
            await conn.execute(
                "INSERT INTO maintenance_targets (window_id, target_id) VALUES (%s, %s)", (wid, t)
            )
    return str(wid)

"""``target_last_24h``: the rollup job keeps each target's last 24 h (what target reads show as
``last_24h``) from the hourly rollups, rewriting a target's row when its hours change and every
row when the window moves on to the next hour."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.domain.results.rollups import refresh_last_24h, run_rollups
from tests.conftest import Persona

API = "/api/v1/targets"


async def make(owner: Persona, name: str) -> str:
    body = {"name": name, "check": {"type": "http", "url": f"https://{name}.example.com/"}}
    resp = await owner.post(API, json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def hour_row(conn: Any, target_id: str, hour: datetime, total: int, up: int) -> None:
    await conn.execute(
        "INSERT INTO result_rollups_hourly (target_id, region_id, hour, org_id, total, up, down,"
        " degraded, error, missed, samples) SELECT id, 'default', %s, org_id, %s, %s, %s, 0, 0,"
        " 0, %s FROM targets WHERE id = %s",
        (hour, total, up, total - up, total, target_id),
    )


async def day(owner: Persona, target_id: str) -> Any:
    return (await owner.get(f"{API}/{target_id}")).json()["last_24h"]


async def window(conn: Any) -> datetime:
    row = await (await conn.execute("SELECT date_trunc('hour', now()) AS h")).fetchone()
    return row["h"]


async def test_the_window_moving_rewrites_every_row_and_changed_hours_rewrite_theirs(
    owner: Persona, db_url: str
) -> None:
    a, b = await make(owner, "a"), await make(owner, "b")
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        now_hour = await window(conn)
        await hour_row(conn, a, now_hour - timedelta(hours=1), 60, 60)
        await hour_row(conn, a, now_hour - timedelta(hours=23), 60, 30)
        await hour_row(conn, a, now_hour - timedelta(hours=24), 60, 0)  # began > 24 h ago
        await hour_row(conn, b, now_hour - timedelta(hours=2), 10, 5)
        # Nothing read the hourly rows yet: reads show the kept rows, not a live sum.
        assert (await day(owner, a))["checks"] == 0
        # The window moved (the last full pass was for another hour): every row is rewritten.
        await conn.execute("UPDATE rollup_state SET day_since = NULL")
        await refresh_last_24h(conn, set())
        assert await day(owner, a) == {"checks": 120, "checks_up": 90, "uptime_pct": 75.0}
        assert await day(owner, b) == {"checks": 10, "checks_up": 5, "uptime_pct": 50.0}
        since = (await (await conn.execute("SELECT day_since FROM rollup_state")).fetchone())[
            "day_since"
        ]
        assert since == now_hour - timedelta(hours=23)

        # Same window: only the targets whose hours were written are rewritten.
        await hour_row(conn, a, now_hour - timedelta(hours=3), 40, 40)
        await hour_row(conn, b, now_hour - timedelta(hours=3), 40, 40)
        await refresh_last_24h(conn, {uuid.UUID(a)})
        assert (await day(owner, a))["checks"] == 160
        assert (await day(owner, b))["checks"] == 10
        # A list page carries the same figures as the single reads.
        items = (await owner.get(API, params={"sort": "name"})).json()["items"]
        assert [i["last_24h"]["checks"] for i in items] == [160, 10]

        # The rollup job's run does the full pass when the window has moved on.
        await conn.execute("UPDATE rollup_state SET day_since = day_since - interval '1 hour'")
        assert (await run_rollups(conn)).ran
        assert (await day(owner, b))["checks"] == 50


async def test_a_deleted_target_leaves_no_row(owner: Persona, db_url: str) -> None:
    a = await make(owner, "gone")
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("UPDATE rollup_state SET day_since = NULL")
        await refresh_last_24h(conn, set())
        assert await (
            await conn.execute("SELECT 1 FROM target_last_24h WHERE target_id = %s", (a,))
        ).fetchone()
        assert (await owner.delete(f"{API}/{a}")).status_code == 204
        assert not await (
            await conn.execute("SELECT 1 FROM target_last_24h WHERE target_id = %s", (a,))
        ).fetchone()

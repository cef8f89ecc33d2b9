"""Incremental rollups: a run recomputes only the minutes that got rows since the previous run
(by ``received_at``), and the result is what a from-scratch computation gives."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar

from control_plane.domain.results.rollups import ARRIVAL_LAG, floor_minute, rollup_range
from tests.conftest import Persona
from tests.control_plane.results.test_rollups import connect, db_now, insert, rollup_rows, run
from tests.monitoring_helpers import make_target


async def _past_arrival_lag() -> None:
    """Rows written before this are behind the next run's arrival watermark."""
    await asyncio.sleep(ARRIVAL_LAG.total_seconds() + 0.2)


async def _from_scratch(db_url: str, target_id: str, lo: datetime, hi: datetime) -> list[Any]:
    """The target's minute rows as a full recompute of [lo, hi) gives them."""
    async with await connect(db_url) as conn:
        await conn.execute("DELETE FROM result_rollups WHERE target_id = %s", (target_id,))
        await rollup_range(conn, lo, hi)
    return await rollup_rows(db_url, target_id)


async def _received_to(db_url: str) -> datetime | None:
    async with await connect(db_url) as conn:
        row = await (
            await conn.execute("SELECT received_to FROM rollup_state WHERE id = 1")
        ).fetchone()
    assert row is not None
    got: datetime | None = row["received_to"]
    return got


async def test_two_runs_with_results_in_between_equal_a_full_recompute(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    await run(db_url)  # a watermark to go on from: the runs below are incremental ones
    now = await db_now(db_url)
    recent = floor_minute(now) - timedelta(minutes=2)
    old = floor_minute(now) - timedelta(hours=5)
    first = [
        (tid, "default", recent + timedelta(seconds=5), org, "up", 10.0, 1.0, 2.0),
        (tid, "default", recent + timedelta(seconds=65), org, "down", 30.0, None, None),
        (tid, "eu", recent + timedelta(seconds=5), org, "up", 7.0, None, None),
        (tid, "default", old + timedelta(seconds=1), org, "up", 5.0, None, None),
    ]
    await insert(db_url, first)
    # Behind the arrival watermark of the next run: the run after it must read them from the
    # minute, not as arrivals.
    await _past_arrival_lag()
    one = await run(db_url)
    assert one.ran and one.rows_written == 4
    # More rows in the same minutes (each minute's quantiles now span both batches), in a new
    # minute, and a missed placeholder.
    second = [
        (tid, "default", recent + timedelta(seconds=20), org, "up", 50.0, 3.0, None),
        (tid, "default", recent + timedelta(seconds=40), org, "degraded", 90.0, None, 4.0),
        (tid, "eu", recent + timedelta(seconds=30), org, "missed", None, None, None),
        (tid, "default", old + timedelta(seconds=31), org, "error", 70.0, None, None),
        (tid, "default", recent + timedelta(seconds=125), org, "up", 11.0, None, None),
    ]
    await insert(db_url, second)
    two = await run(db_url)
    assert two.ran and two.rows_written == 4
    got = await rollup_rows(db_url, target["id"])
    assert len(got) == 5
    by_key = {(r["region_id"], r["minute"]): r for r in got}
    m = by_key[("default", recent)]
    assert (m["total"], m["up"], m["degraded"], m["samples"]) == (3, 2, 1, 3)
    assert m["latency_p50"] == 50.0
    assert by_key[("eu", recent)]["missed"] == 1
    assert by_key[("default", old)]["total"] == 2
    scratch = await _from_scratch(db_url, target["id"], old, recent + timedelta(minutes=3))
    assert got == scratch


async def test_a_late_row_is_counted_in_its_minute(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    now = await db_now(db_url)
    # A minute long settled (in yesterday's partition), rolled up with one row, hour written.
    old = floor_minute(now) - timedelta(hours=26)
    await insert(
        db_url, [(tid, "default", old + timedelta(seconds=3), org, "up", 20.0, None, None)]
    )
    await run(db_url)
    await _past_arrival_lag()
    await run(db_url)
    (row,) = await rollup_rows(db_url, target["id"])
    assert (row["minute"], row["total"], row["up"]) == (old, 1, 1)
    # A row for a slot in that minute arrives now (written straight to the table: no ingest
    # mark for the minute, only its arrival time says it is new).
    await insert(
        db_url, [(tid, "default", old + timedelta(seconds=33), org, "down", 40.0, None, None)]
    )
    late = await run(db_url)
    assert late.rows_written == 1
    (row,) = await rollup_rows(db_url, target["id"])
    assert (row["minute"], row["total"], row["up"], row["down"]) == (old, 2, 1, 1)
    assert row["latency_p50"] == 30.0
    # Its hour, written before, is rebuilt too.
    async with await connect(db_url) as conn:
        hour = await (
            await conn.execute(
                "SELECT total, down FROM result_rollups_hourly WHERE target_id = %s AND hour = %s",
                (tid, old.replace(minute=0)),
            )
        ).fetchone()
    assert hour == {"total": 2, "down": 1}


async def test_a_run_with_nothing_new_writes_nothing(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    now = await db_now(db_url)
    minute = floor_minute(now) - timedelta(minutes=3)
    await insert(
        db_url,
        [
            (tid, "default", minute + timedelta(seconds=i), org, "up", 5.0 + i, None, None)
            for i in range(3)
        ],
    )
    await run(db_url)
    await _past_arrival_lag()
    await run(db_url)  # past every row's arrival now
    before = await _received_to(db_url)
    # A run that recomputed minutes with no new rows would put this back; an incremental one
    # never looks at the minute.
    async with await connect(db_url) as conn:
        await conn.execute(
            "UPDATE result_rollups SET up = up + 100 WHERE target_id = %s AND minute = %s",
            (tid, minute),
        )
    tampered = await rollup_rows(db_url, target["id"])
    idle = await run(db_url)
    assert idle.ran and idle.rows_written == 0
    assert await rollup_rows(db_url, target["id"]) == tampered
    after = await _received_to(db_url)
    assert before is not None and after is not None and after > before

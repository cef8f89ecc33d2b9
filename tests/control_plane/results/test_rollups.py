"""Per-minute rollups: the worker job, and the reads built on them (/uptime, /latency)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from psycopg.rows import dict_row

from control_plane.domain.agent_api.jobs import sweep_missed
from control_plane.domain.results.jobs import rollup
from control_plane.domain.results.rollups import (
    MARGIN_SECS,
    RollupRun,
    drop_expired_raw,
    run_rollups,
)
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import make_agent, make_due, make_target, result_for

COLS = "target_id, region_id, scheduled_at, org_id, status, latency_ms, dns_ms, connect_ms"


async def connect(db_url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row)


async def run(db_url: str) -> RollupRun:
    async with await connect(db_url) as conn:
        return await run_rollups(conn)


async def insert(db_url: str, rows: list[tuple[Any, ...]]) -> None:
    async with await connect(db_url) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO results ({COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows
            )


async def rollup_rows(db_url: str, target_id: str) -> list[dict[str, Any]]:
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT * FROM result_rollups WHERE target_id = %s ORDER BY region_id, minute",
            (uuid.UUID(target_id),),
        )
        return await cur.fetchall()


async def db_now(db_url: str) -> datetime:
    async with await connect(db_url) as conn:
        row = await (await conn.execute("SELECT now() AS now")).fetchone()
        assert row is not None
        now: datetime = row["now"]
        return now


async def raw_uptime(
    db_url: str, target_id: str, start: datetime, end: datetime, region: str | None = None
) -> dict[str, int]:
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT status, count(*) AS n FROM results WHERE target_id = %s"
            " AND scheduled_at >= %s AND scheduled_at < %s"
            " AND (%s::text IS NULL OR region_id = %s) GROUP BY status",
            (uuid.UUID(target_id), start, end, region, region),
        )
        counts = {r["status"]: int(r["n"]) for r in await cur.fetchall()}
    out = {s: counts.get(s, 0) for s in ("up", "down", "degraded", "error", "missed")}
    out["total"] = out["up"] + out["down"] + out["degraded"] + out["error"]
    return out


async def test_rollup_counts_and_quantiles(owner: Persona, app: Litestar, db_url: str) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    minute = (await db_now(db_url)).replace(second=0, microsecond=0) - timedelta(hours=3)
    statuses = ["up", "up", "down", "degraded", "error"]
    rows = [
        (tid, "default", minute + timedelta(seconds=10 * i), org, s, 10.0 * (i + 1), 1.0 * i, 2.0)
        for i, s in enumerate(statuses)
    ]
    # A missed placeholder has no latency: counted, but not a sample.
    rows.append((tid, "default", minute + timedelta(seconds=55), org, "missed", None, None, None))
    # The next minute and another region are rows of their own.
    rows.append((tid, "default", minute + timedelta(seconds=60), org, "up", 99.0, None, None))
    rows.append((tid, "eu", minute + timedelta(seconds=5), org, "down", 7.0, None, None))
    await insert(db_url, rows)
    first = await run(db_url)
    assert first.ran and first.advanced and first.rows_written == 3
    got = await rollup_rows(db_url, target["id"])
    assert [(r["region_id"], r["minute"]) for r in got] == [
        ("default", minute),
        ("default", minute + timedelta(minutes=1)),
        ("eu", minute),
    ]
    m = got[0]
    assert m["org_id"] == org
    assert (m["total"], m["up"], m["down"], m["degraded"], m["error"], m["missed"]) == (
        6,
        2,
        1,
        1,
        1,
        1,
    )
    # Latencies 10..50: percentile_cont of the minute's samples.
    assert m["samples"] == 5
    assert m["latency_p50"] == pytest.approx(30.0)
    assert m["latency_p95"] == pytest.approx(48.0)
    assert m["latency_p99"] == pytest.approx(49.6)
    assert m["latency_avg"] == pytest.approx(30.0)
    assert m["dns_avg"] == pytest.approx(2.0) and m["connect_avg"] == pytest.approx(2.0)
    assert m["tls_avg"] is None and m["ttfb_avg"] is None
    assert got[1]["total"] == 1 and got[1]["latency_p99"] == pytest.approx(99.0)
    assert got[2]["down"] == 1 and got[2]["samples"] == 1
    # The hour is settled: its hourly rows sum the minutes.
    assert first.hours_written == 2
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT * FROM result_rollups_hourly WHERE target_id = %s ORDER BY region_id", (tid,)
        )
        hours = await cur.fetchall()
    assert [(h["region_id"], h["hour"]) for h in hours] == [
        ("default", minute.replace(minute=0)),
        ("eu", minute.replace(minute=0)),
    ]
    assert (hours[0]["total"], hours[0]["up"], hours[0]["samples"]) == (7, 3, 6)
    assert hours[0]["latency_avg"] == pytest.approx((30.0 * 5 + 99.0) / 6)
    assert hours[0]["latency_p99"] == pytest.approx(49.6 + 0.99 * (99.0 - 49.6), rel=1e-4)

    # Idempotent: a second run writes nothing and changes nothing.
    again = await run(db_url)
    assert again.ran and again.rows_written == 0 and again.hours_written == 0
    assert await rollup_rows(db_url, target["id"]) == got


async def test_late_result_and_missed_replacement_are_picked_up(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    slot = await make_due(db_url, target["id"], 30)
    (lease,) = (await agent.lease()).json()["leases"]
    # The sweep gave the slot up for missed while the agent was still on it.
    await insert(db_url, [(tid, "default", slot, org, "missed", None, None, None)])
    await run(db_url)
    minute = slot.replace(second=0, microsecond=0)
    (row,) = await rollup_rows(db_url, target["id"])
    assert (row["minute"], row["missed"], row["up"], row["samples"]) == (minute, 1, 0, 0)

    # The real result replaces the placeholder through ingest; a late row lands in a recent
    # minute. Both show after the next run.
    assert (await agent.ingest([result_for(lease, "up")])).json()["accepted"] == 1
    late_at = (await db_now(db_url)) - timedelta(seconds=150)
    await insert(db_url, [(tid, "default", late_at, org, "down", 40.0, None, None)])
    await run(db_url)
    by_minute = {r["minute"]: r for r in await rollup_rows(db_url, target["id"])}
    assert (by_minute[minute]["missed"], by_minute[minute]["up"]) == (0, 1)
    assert by_minute[minute]["latency_p50"] == pytest.approx(12.5)
    assert by_minute[minute]["dns_avg"] == pytest.approx(1.0)
    late_minute = late_at.replace(second=0, microsecond=0)
    assert by_minute[late_minute]["down"] == 1


async def test_two_workers_at_once(owner: Persona, app: Litestar, db_url: str) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    start = (await db_now(db_url)) - timedelta(days=2, hours=1)
    await insert(
        db_url,
        [
            (tid, "default", start + timedelta(minutes=i), org, "up", 5.0, None, None)
            for i in range(600)
        ],
    )
    runs = await asyncio.gather(run(db_url), run(db_url))
    assert sum(r.rows_written for r in runs) == 600
    assert len(await rollup_rows(db_url, target["id"])) == 600
    # The worker's own job entry point runs the same thing.
    pool_ctx = {"resources": app.state.resources}
    await rollup(pool_ctx)
    assert len(await rollup_rows(db_url, target["id"])) == 600


async def test_schedule_left_behind_holds_the_watermark(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid = uuid.UUID(target["id"])
    # The worker was down: a slot 10 minutes overdue, its missed placeholders still to come.
    due = await make_due(db_url, target["id"], 600, on_grid=False)
    held = await run(db_url)
    assert held.ran and not held.advanced
    assert held.watermark == due + timedelta(seconds=60 + MARGIN_SECS)
    base = f"/api/v1/targets/{target['id']}/uptime"
    window = {"from": (due - timedelta(hours=1)).isoformat()}
    # The sweep catches up: placeholders for every slot since (written "late").
    missed = await sweep_missed(app.state.resources)
    assert missed >= 9
    got = (await owner.get(base, params=window)).json()
    assert got["missed"] == missed, "the held minutes are read from raw rows"
    # The next run is not held, recomputes those minutes, and the answer stays the same.
    again = await run(db_url)
    assert again.advanced
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT sum(missed) AS n FROM result_rollups WHERE target_id = %s", (tid,)
        )
        assert (await cur.fetchone() or {})["n"] == missed
        await conn.execute(
            "UPDATE result_rollups SET missed = missed + 100 WHERE target_id = %s", (tid,)
        )
    # Settled now: read from the rollups (the +100 per minute row shows through).
    got = (await owner.get(base, params=window)).json()
    assert got["missed"] > missed


async def test_uptime_equals_raw_counts(owner: Persona, app: Litestar, db_url: str) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    now = await db_now(db_url)
    rng = random.Random(5)
    statuses = ["up"] * 6 + ["down", "degraded", "error", "missed"]
    rows = []
    at = now - timedelta(hours=3)
    while at < now - timedelta(seconds=MARGIN_SECS + 120):
        for region in ("default", "eu"):
            rows.append((tid, region, at, org, rng.choice(statuses), 10.0, None, None))
        at += timedelta(seconds=rng.choice([17, 23, 41]))
    await insert(db_url, rows)
    assert (await run(db_url)).advanced
    # Rows after the run, in the not-yet-settled tail (raw only).
    tail = [
        (tid, "default", now - timedelta(seconds=s), org, st, 10.0, None, None)
        for s, st in ((150, "down"), (100, "up"), (40, "error"), (5, "up"))
    ]
    await insert(db_url, tail)
    base = f"/api/v1/targets/{target['id']}/uptime"
    ranges = [
        (now - timedelta(hours=3, seconds=-13.5), now - timedelta(hours=1, seconds=29.25)),
        (now - timedelta(hours=2, seconds=7), now + timedelta(seconds=1)),
        (now - timedelta(hours=4), now + timedelta(minutes=1)),
        (now - timedelta(minutes=90, seconds=20), now - timedelta(minutes=90, seconds=1)),
        (now - timedelta(seconds=170), now),
        # An offset that is not whole hours: the rollups' hours are still UTC ones.
        (
            (now - timedelta(hours=2, minutes=50)).astimezone(timezone(timedelta(hours=5.5))),
            now - timedelta(minutes=30),
        ),
    ]
    for start, end in ranges:
        for region in (None, "default", "eu"):
            params = {"from": start.isoformat(), "to": end.isoformat()}
            if region:
                params["region"] = region
            got = (await owner.get(base, params=params)).json()
            want = await raw_uptime(db_url, target["id"], start, end, region)
            assert {k: got[k] for k in want} == want, (start, end, region)
            # /results counts the same rows (missed ones too) for its total.
            page = (
                await owner.get(base.replace("/uptime", "/results"), params={**params, "limit": 3})
            ).json()
            assert page["total"] == want["total"] + want["missed"]
            assert len(page["items"]) == min(3, page["total"])
            good = want["up"] + want["degraded"]
            assert got["uptime_pct"] == (
                round(100 * good / want["total"], 3) if want["total"] else None
            )
    # The settled middle is read from the rollups: full hours from the hourly rows, other full
    # minutes from the minute rows. Altering each shows through where (and only where) it is read.
    hour = (now - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    minute = hour + timedelta(minutes=30)
    async with await connect(db_url) as conn:
        await conn.execute(
            "UPDATE result_rollups_hourly SET up = up + 1000 WHERE target_id = %s AND hour = %s"
            " AND region_id = 'default'",
            (tid, hour),
        )
        await conn.execute(
            "UPDATE result_rollups SET up = up + 100 WHERE target_id = %s AND minute = %s"
            " AND region_id = 'default'",
            (tid, minute),
        )
    for start, end, extra in (
        (now - timedelta(hours=3), now, 1000),
        (hour + timedelta(seconds=1), hour + timedelta(seconds=3599), 100),
        (minute + timedelta(seconds=1), minute + timedelta(seconds=59), 0),
    ):
        params = {"from": start.isoformat(), "to": end.isoformat()}
        got = (await owner.get(base, params=params)).json()
        assert got["up"] == (await raw_uptime(db_url, target["id"], start, end))["up"] + extra


async def test_latency_series(
    owner: Persona, outsider: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    end = (await db_now(db_url)).replace(second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=24)
    rows = []
    # One sample a minute per region for the first two hours of the day; nothing after.
    for i in range(120):
        at = start + timedelta(minutes=i, seconds=7)
        rows.append((tid, "default", at, org, "up", float(i + 1), 2.0, 4.0))
        rows.append((tid, "eu", at, org, "up", 500.0, None, None))
    await insert(db_url, rows)
    await run(db_url)
    base = f"/api/v1/targets/{target['id']}"
    params = {"from": start.isoformat(), "to": end.isoformat(), "region": "default"}
    body = (await owner.get(f"{base}/latency", params=params)).json()
    assert body["bucket_seconds"] == 1440
    buckets = body["buckets"]
    assert len(buckets) == 60
    assert buckets[0]["t"] == int(start.timestamp() * 1000)
    assert buckets[1]["t"] - buckets[0]["t"] == 1440 * 1000
    # Bucket 0 holds minutes 0..23 with latencies 1..24.
    b0 = buckets[0]
    assert b0["samples"] == 24
    assert b0["p50"] == pytest.approx(12.5)
    assert b0["p99"] == pytest.approx(23.77, abs=0.01)
    assert b0["avg"] == pytest.approx(12.5)
    assert (b0["dns"], b0["connect"], b0["tls"], b0["ttfb"]) == (2.0, 4.0, 0.0, 0.0)
    assert [b["samples"] for b in buckets[:6]] == [24, 24, 24, 24, 24, 0]
    assert all(b["samples"] == 0 and b["p50"] == 0 for b in buckets[5:])
    # All regions together.
    both = (
        await owner.get(
            f"{base}/latency", params={"from": start.isoformat(), "to": end.isoformat()}
        )
    ).json()
    assert both["buckets"][0]["samples"] == 48
    assert both["buckets"][0]["avg"] == pytest.approx((12.5 + 500) / 2)
    # One hour: 60 s buckets.
    hour = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    one = (await owner.get(f"{base}/latency", params=hour)).json()
    assert one["bucket_seconds"] == 60 and len(one["buckets"]) == 60
    by = (
        await owner.get(
            f"{base}/latency/by-region", params={"from": start.isoformat(), "to": end.isoformat()}
        )
    ).json()
    assert by["bucket_seconds"] == 1440
    assert [r["region"] for r in by["regions"]] == ["default", "eu"]
    assert by["regions"][1]["buckets"][0]["p50"] == 500.0
    assert len(by["regions"][0]["buckets"]) == 60
    only = (
        await owner.get(
            f"{base}/latency/by-region",
            params={"from": start.isoformat(), "to": end.isoformat(), "region": "eu"},
        )
    ).json()
    assert [r["region"] for r in only["regions"]] == ["eu"]

    now = datetime.now(UTC)
    bad = {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()}
    for path in ("latency", "latency/by-region", "uptime"):
        assert_error(await owner.get(f"{base}/{path}", params=bad), 400, "BAD_TIME_RANGE")
        assert_error(await outsider.get(f"{base}/{path}"), 404, "TARGET_NOT_FOUND")
        assert_error(
            await owner.get(f"/api/v1/targets/{uuid.uuid4()}/{path}"), 404, "TARGET_NOT_FOUND"
        )


async def test_latency_long_range_reads_hours(owner: Persona, app: Litestar, db_url: str) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    now = await db_now(db_url)
    start = now - timedelta(days=30)
    at0 = (now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    rows = [
        (tid, "default", at0 + timedelta(minutes=i, seconds=3), org, "up", float(i % 10), None, 1.0)
        for i in range(180)
    ]
    # The recent tail, not yet in any hourly row, still counts.
    rows.append((tid, "default", now - timedelta(minutes=2), org, "up", 1000.0, None, None))
    await insert(db_url, rows)
    run1 = await run(db_url)
    assert run1.hours_written == 3
    body = (
        await owner.get(
            f"/api/v1/targets/{target['id']}/latency",
            params={"from": start.isoformat(), "to": now.isoformat()},
        )
    ).json()
    assert body["bucket_seconds"] == 43200
    full = [b for b in body["buckets"] if b["samples"]]
    assert sum(b["samples"] for b in full) == 181
    assert full[-1]["samples"] == 1 and full[-1]["avg"] == 1000.0
    assert sum(b["avg"] * b["samples"] for b in full[:-1]) == pytest.approx(4.5 * 180)
    assert all(b["connect"] == 1.0 for b in full[:-1])


async def test_raw_retention_drops_rolled_up_partitions(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    async with await connect(db_url) as conn:
        await conn.execute(
            "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - 40, 3)"
        )
        # Nothing is dropped before the rollups ran, nor with retention off.
        assert await drop_expired_raw(conn, 30) == 0
    old = (await db_now(db_url)) - timedelta(days=39)
    recent = (await db_now(db_url)) - timedelta(days=2)
    await insert(
        db_url,
        [
            (tid, "default", old, org, "up", 5.0, None, None),
            (tid, "default", recent, org, "down", 5.0, None, None),
        ],
    )
    await run(db_url)
    async with await connect(db_url) as conn:
        assert await drop_expired_raw(conn, 0) == 0
        assert await drop_expired_raw(conn, 30) == 3
        assert await drop_expired_raw(conn, 30) == 0
        cur = await conn.execute("SELECT count(*) AS n FROM results WHERE target_id = %s", (tid,))
        assert (await cur.fetchone() or {})["n"] == 1
    # The rollups stay: the month's uptime still counts the expired day.
    month = {"from": (old - timedelta(days=1)).isoformat()}
    got = (await owner.get(f"/api/v1/targets/{target['id']}/uptime", params=month)).json()
    assert (got["up"], got["down"]) == (1, 1)

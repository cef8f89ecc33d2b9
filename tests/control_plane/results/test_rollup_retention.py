"""Minute rollups by day: their daily partitions (made by the worker with the raw ones) and their
retention (whole days dropped once their hours are in the hourly rollups), and the reads over
days whose minutes are gone (/uptime, /latency at hourly grain)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from psycopg import sql

from control_plane.db.migrate import load_migrations, migrate
from control_plane.domain.results.jobs import ensure_partitions
from control_plane.domain.results.rollups import (
    MARGIN_SECS,
    ceil_hour,
    drop_expired_minutes,
    drop_expired_raw,
    rollup_range,
)
from control_plane.settings import SettingsError, settings_from_env
from tests.conftest import Persona
from tests.control_plane.results.test_rollups import (
    connect,
    db_now,
    insert,
    raw_uptime,
    rollup_rows,
    run,
)
from tests.monitoring_helpers import make_target
from tests.stack import Stack, with_database


async def partitions(db_url: str, parent: str) -> set[str]:
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            (parent,),
        )
        return {r["relname"] for r in await cur.fetchall()}


async def where_rows(db_url: str, target_id: uuid.UUID) -> dict[str, int]:
    """Minute rollup rows of a target by the partition holding them."""
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT tableoid::regclass::text AS part, count(*) AS n FROM result_rollups"
            " WHERE target_id = %s GROUP BY 1",
            (target_id,),
        )
        return {r["part"]: int(r["n"]) for r in await cur.fetchall()}


def day_name(prefix: str, t: datetime) -> str:
    return prefix + t.astimezone(UTC).strftime("%Y%m%d")


async def test_minute_partitions_made_with_raw_ones_and_rows_land_by_day(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    res = app.state.resources
    async with await connect(db_url) as conn:
        # What the migration made is gone: the worker's job makes them again, for the same days.
        await conn.execute(
            "DO $$ DECLARE p record; BEGIN FOR p IN SELECT c.relname FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'result_rollups'::regclass"
            " AND c.relname <> 'result_rollups_default'"
            " LOOP EXECUTE format('DROP TABLE %I', p.relname); END LOOP; END $$"
        )
    assert await partitions(db_url, "result_rollups") == {"result_rollups_default"}

    # Two workers at once: they take turns, each day is made once, neither fails.
    async def make() -> int:
        async with await connect(db_url) as conn:
            cur = await conn.execute(
                "SELECT vigil_ensure_rollup_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9)"
                " AS n"
            )
            return int((await cur.fetchone() or {})["n"])

    assert sorted(await asyncio.gather(make(), make())) == [0, 9]
    await ensure_partitions(res)
    now = await db_now(db_url)
    days = [now + timedelta(days=d) for d in range(-1, 8)]
    minute_parts = await partitions(db_url, "result_rollups")
    assert minute_parts == {day_name("result_rollups_", d) for d in days} | {
        "result_rollups_default"
    }
    raw_days = {p.removeprefix("results_") for p in await partitions(db_url, "results")}
    assert {p.removeprefix("result_rollups_") for p in minute_parts} <= raw_days
    # Idempotent.
    await ensure_partitions(res)
    assert await partitions(db_url, "result_rollups") == minute_parts
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT vigil_ensure_rollup_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9) AS n"
        )
        assert (await cur.fetchone() or {})["n"] == 0

    # Rows land in their UTC day's partition; a day without one goes to the default partition.
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    old = now - timedelta(days=20)
    rows = [
        (tid, "default", today - timedelta(seconds=30), org, "up", 5.0, None, None),
        (tid, "default", today + timedelta(seconds=30), org, "up", 5.0, None, None),
        (tid, "default", old, org, "down", 7.0, None, None),
        (tid, "default", old + timedelta(minutes=1), org, "up", 8.0, None, None),
    ]
    await insert(db_url, rows)
    await run(db_url)
    assert await where_rows(db_url, tid) == {
        day_name("result_rollups_", today - timedelta(days=1)): 1,
        day_name("result_rollups_", today): 1,
        "result_rollups_default": 2,
    }
    before = await rollup_rows(db_url, target["id"])
    # Making the old day's partition moves its rows out of the default partition.
    async with await connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT vigil_ensure_rollup_partitions((%s AT TIME ZONE 'UTC')::date, 1) AS n", (old,)
        )
        assert (await cur.fetchone() or {})["n"] == 1
    assert await where_rows(db_url, tid) == {
        day_name("result_rollups_", today - timedelta(days=1)): 1,
        day_name("result_rollups_", today): 1,
        day_name("result_rollups_", old): 2,
    }
    assert await rollup_rows(db_url, target["id"]) == before
    # The upsert still finds its row in a partition (a late result recomputes the minute).
    await insert(db_url, [(tid, "eu", old, org, "up", 1.0, None, None)])
    async with await connect(db_url) as conn:
        await rollup_range(conn, old - timedelta(minutes=1), old + timedelta(minutes=2))
    after = await rollup_rows(db_url, target["id"])
    assert len(after) == len(before) + 1
    assert await where_rows(db_url, tid) == {
        day_name("result_rollups_", today - timedelta(days=1)): 1,
        day_name("result_rollups_", today): 1,
        day_name("result_rollups_", old): 3,
    }


async def test_two_workers_ensuring_raw_partitions_at_once_take_turns(db_url: str) -> None:
    # Days well ahead, which no migration made: both callers find them missing; without the lock
    # both would create them and one would fail with "already exists".
    async def make() -> int:
        async with await connect(db_url) as conn:
            cur = await conn.execute(
                "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date + 30, 5)"
                " AS n"
            )
            return int((await cur.fetchone() or {})["n"])

    for _ in range(3):
        async with await connect(db_url) as conn:
            await conn.execute(
                "DO $$ DECLARE p record; BEGIN FOR p IN SELECT c.relname FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'results'::regclass"
                " AND c.relname ~ '^results_[0-9]{8}$'"
                " AND to_date(substr(c.relname, 9), 'YYYYMMDD')"
                "     >= (now() AT TIME ZONE 'UTC')::date + 30"
                " LOOP EXECUTE format('DROP TABLE %I', p.relname); END LOOP; END $$"
            )
        assert sorted(await asyncio.gather(make(), make(), make())) == [0, 0, 5]


def test_minute_rollup_retention_setting() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://db/vigil",
        "VIGIL_REDIS_URL": "redis://r/0",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
    }
    assert settings_from_env(env).database.minute_rollup_retention_days == 0
    for value, days in (("0", 0), ("2", 2), ("90", 90)):
        env["VIGIL_MINUTE_ROLLUP_RETENTION_DAYS"] = value
        assert settings_from_env(env).database.minute_rollup_retention_days == days
    for value in ("1", "-3", "week"):
        env["VIGIL_MINUTE_ROLLUP_RETENTION_DAYS"] = value
        with pytest.raises(SettingsError, match="VIGIL_MINUTE_ROLLUP_RETENTION_DAYS"):
            settings_from_env(env)


async def latency_of(owner: Persona, target_id: str, start: datetime, end: datetime) -> Any:
    params = {"from": start.isoformat(), "to": end.isoformat()}
    return (await owner.get(f"/api/v1/targets/{target_id}/latency", params=params)).json()


async def uptime_of(owner: Persona, target_id: str, start: datetime, end: datetime) -> Any:
    params = {"from": start.isoformat(), "to": end.isoformat()}
    got = (await owner.get(f"/api/v1/targets/{target_id}/uptime", params=params)).json()
    return {k: got[k] for k in ("total", "up", "down", "degraded", "error", "missed")}


async def test_minute_retention_drops_old_days_and_reads_use_hours(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_target(owner)
    tid, org = uuid.UUID(target["id"]), owner.org_id
    async with await connect(db_url) as conn:
        await conn.execute(
            "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - 32, 33)"
        )
        await conn.execute(
            "SELECT vigil_ensure_rollup_partitions((now() AT TIME ZONE 'UTC')::date - 32, 33)"
        )
        # Nothing is dropped before the rollups ran.
        assert await drop_expired_minutes(conn, 7) == 0
    now = await db_now(db_url)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(11)
    statuses = ["up"] * 7 + ["down", "degraded", "error", "missed"]
    rows = []
    at = now - timedelta(days=31)
    while at < now - timedelta(seconds=MARGIN_SECS + 120):
        status = rng.choice(statuses)
        latency = None if status == "missed" else rng.uniform(10, 300)
        rows.append((tid, rng.choice(["default", "eu"]), at, org, status, latency, None, None))
        at += timedelta(seconds=rng.choice([300, 420, 660]))
    # An old day without a partition of its own: its minute rows are in the default partition.
    ancient = today - timedelta(days=40)
    rows.append((tid, "default", ancient, org, "up", 1.0, None, None))
    await insert(db_url, rows)
    assert (await run(db_url)).advanced
    assert "result_rollups_default" in await where_rows(db_url, tid)

    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    month = (end - timedelta(days=30), end)
    old_day = today - timedelta(days=20)
    # Ranges that start (or lie) in days whose minutes will expire.
    odd = [
        (old_day + timedelta(hours=5, minutes=17, seconds=12), end),
        (
            old_day + timedelta(hours=5, minutes=17),
            old_day + timedelta(days=1, hours=13, minutes=41, seconds=3),
        ),
        (old_day + timedelta(minutes=10), old_day + timedelta(minutes=50)),
    ]
    week = (today - timedelta(days=10), today - timedelta(days=3))
    uptime_before = await uptime_of(owner, target["id"], *month)
    assert uptime_before == await raw_uptime(db_url, target["id"], *month)
    for start, stop in odd:
        assert await uptime_of(owner, target["id"], start, stop) == await raw_uptime(
            db_url, target["id"], start, stop
        )
    latency_before = await latency_of(owner, target["id"], *month)
    week_before = await latency_of(owner, target["id"], *week)
    assert sum(b["samples"] for b in latency_before["buckets"]) > 3000

    async with await connect(db_url) as conn:
        assert await drop_expired_minutes(conn, 0) == 0
        # Only days whose hours are written: with the watermark 20 days back, the minutes of the
        # days since are kept whatever the retention says.
        cur = await conn.execute("SELECT ran_at FROM rollup_state WHERE id = 1")
        ran_at = (await cur.fetchone() or {})["ran_at"]
        await conn.execute(
            "UPDATE rollup_state SET ran_at = %s WHERE id = 1", (ran_at - timedelta(days=20),)
        )
        held_day = (ran_at - timedelta(days=20, seconds=60 + MARGIN_SECS)).astimezone(UTC)
        held_day = held_day.replace(hour=0, minute=0, second=0, microsecond=0)
        dropped = await drop_expired_minutes(conn, 2)
        assert dropped == (held_day - (today - timedelta(days=32))).days
        assert min(await partitions(db_url, "result_rollups")) == day_name(
            "result_rollups_", held_day
        )
        cur = await conn.execute("SELECT minutes_from FROM rollup_state WHERE id = 1")
        assert (await cur.fetchone() or {})["minutes_from"] == held_day
        await conn.execute("UPDATE rollup_state SET ran_at = %s WHERE id = 1", (ran_at,))

    # The worker's job with a 7-day retention drops the older days, and only those.
    res = app.state.resources
    short = dataclasses.replace(
        res.settings,
        database=dataclasses.replace(res.settings.database, minute_rollup_retention_days=7),
    )
    await ensure_partitions(dataclasses.replace(res, settings=short))
    cut = today - timedelta(days=7)
    kept = {p for p in await partitions(db_url, "result_rollups") if p[-1].isdigit()}
    assert kept == {day_name("result_rollups_", cut + timedelta(days=d)) for d in range(15)}
    where = await where_rows(db_url, tid)
    assert "result_rollups_default" not in where
    assert min(where) == day_name("result_rollups_", cut)
    async with await connect(db_url) as conn:
        cur = await conn.execute("SELECT minutes_from FROM rollup_state WHERE id = 1")
        assert (await cur.fetchone() or {})["minutes_from"] == cut
        # Idempotent; and the hourly rollups all stay.
        assert await drop_expired_minutes(conn, 7) == 0
        cur = await conn.execute(
            "SELECT sum(total) AS n FROM result_rollups_hourly WHERE target_id = %s AND hour < %s",
            (tid, cut),
        )
        assert (await cur.fetchone() or {})["n"] == sum(1 for r in rows if r[2] < cut)

    # Hour-aligned 30 days: the same answers.
    assert await uptime_of(owner, target["id"], *month) == uptime_before
    assert await latency_of(owner, target["id"], *month) == latency_before
    # A week across the cut-off (6 h buckets are read from minutes before): the same samples
    # and mean, the old days now at hourly grain.
    week_after = await latency_of(owner, target["id"], *week)
    assert week_after["bucket_seconds"] == week_before["bucket_seconds"]
    for key in ("samples",):
        assert sum(b[key] for b in week_after["buckets"]) == sum(
            b[key] for b in week_before["buckets"]
        )
    mean = [sum(b["avg"] * b["samples"] for b in w["buckets"]) for w in (week_before, week_after)]
    assert mean[1] == pytest.approx(mean[0], rel=1e-3)
    # Ranges with edges inside expired days: the edge hours count whole.
    for start, stop in odd:
        whole = (
            start.replace(minute=0, second=0, microsecond=0),
            stop if stop >= cut else ceil_hour(stop),
        )
        got = await uptime_of(owner, target["id"], start, stop)
        assert got == await raw_uptime(db_url, target["id"], *whole), (start, stop)
    # A day in expired days at 1440 s buckets: hourly grain, every sample there.
    day = (old_day + timedelta(minutes=30), old_day + timedelta(days=1, minutes=30))
    series = await latency_of(owner, target["id"], *day)
    assert series["bucket_seconds"] == 1440
    want = await raw_uptime(db_url, target["id"], old_day, old_day + timedelta(days=1, hours=1))
    assert sum(b["samples"] for b in series["buckets"]) == want["total"]
    assert sum(1 for b in series["buckets"] if b["samples"]) <= 25

    # Raw retention still works alongside, and the month's answer stays.
    async with await connect(db_url) as conn:
        assert await drop_expired_raw(conn, 10) >= 20
    assert await uptime_of(owner, target["id"], *month) == uptime_before


def test_upgrade_makes_minute_partitions_for_every_raw_day(stack: Stack) -> None:
    """A deployment with older raw days gets their minute partitions with 0006, so the first
    rollup run's backfill lands there, not in the default partition."""
    name = f"vigil_u_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(stack.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(stack.admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for mig in load_migrations():
                if mig.version >= 6:
                    break
                conn.execute(mig.sql.encode())  # type: ignore[arg-type]
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
            conn.execute(
                "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - 20, 2)"
            )
        assert migrate(url) == [m.version for m in load_migrations() if m.version >= 6]
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*), min(c.relname) FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'result_rollups'::regclass AND c.relname ~ '[0-9]{8}$'"
            ).fetchone()
            today = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()
        assert row is not None and today is not None
        # From the oldest raw day (20 days back) to a week ahead.
        assert row[0] == 28
        assert row[1] == "result_rollups_" + (today[0] - timedelta(days=20)).strftime("%Y%m%d")
    finally:
        stack.drop(url)

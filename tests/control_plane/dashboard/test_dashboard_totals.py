"""The dashboard summary's maintained parts equal what is computed from scratch (issue 16).

- last 24 h: the per-org totals (``target_last_24h_org``, 0210) kept by triggers on
  ``target_last_24h`` equal the sum of the org's ``target_last_24h`` rows (the summary's old
  statement) and the hourly rollups of the window, after ingest, after rollup runs (with the
  window's full pass and the compaction), after a target is disabled and deleted; two orgs
  never mix;
- checks in flight: the worker's snapshot (0211) equals the live count of each org's leases
  when taken; the summary uses it while at most ``FRESH_SECS`` old and counts live past that;
- dropped results: the missed slots of the last five minutes of the org's targets.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.domain.dashboard.in_flight import FRESH_SECS, SNAPSHOT_EVERY_SECS, take_snapshot
from control_plane.domain.results.rollups import run_rollups
from control_plane.settings import Settings
from control_plane.worker.main import build_worker
from tests.conftest import Persona
from tests.control_plane.dashboard.test_dashboard_summary import PATH, flush
from tests.monitoring_helpers import AgentHandle, make_agent, make_due, make_target, result_for

COLS = "target_id, region_id, scheduled_at, org_id, status, latency_ms"


async def connect(db_url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=dict_row)


async def one(db_url: str, query: str, *params: Any) -> dict[str, Any]:
    async with await connect(db_url) as conn:
        row = await (await conn.execute(query, params)).fetchone()
        assert row is not None
        return dict(row)


async def maintained_day(db_url: str, org_id: Any) -> tuple[int, int]:
    row = await one(
        db_url,
        "SELECT coalesce(sum(checks), 0)::bigint AS checks, coalesce(sum(up), 0)::bigint AS up"
        " FROM target_last_24h_org WHERE org_id = %s",
        org_id,
    )
    return int(row["checks"]), int(row["up"])


async def scratch_day(db_url: str, org_id: Any) -> tuple[int, int]:
    """The summary's statement before 0210: the org's targets' rows, summed."""
    row = await one(
        db_url,
        "SELECT coalesce(sum(d.checks), 0)::bigint AS checks, coalesce(sum(d.up), 0)::bigint AS up"
        " FROM targets t JOIN target_last_24h d ON d.target_id = t.id WHERE t.org_id = %s",
        org_id,
    )
    return int(row["checks"]), int(row["up"])


async def hourly_day(db_url: str, org_id: Any) -> tuple[int, int]:
    """The org's existing targets' hourly rollups of the last-24-h window."""
    row = await one(
        db_url,
        "SELECT coalesce(sum(h.total - h.missed), 0)::bigint AS checks,"
        " coalesce(sum(h.up + h.degraded), 0)::bigint AS up"
        " FROM result_rollups_hourly h JOIN targets t ON t.id = h.target_id"
        " WHERE t.org_id = %s AND h.hour >= date_trunc('hour', now()) - interval '23 hours'",
        org_id,
    )
    return int(row["checks"]), int(row["up"])


async def assert_day(db_url: str, *personas: Persona, rolled: bool = True) -> list[Any]:
    """Maintained = scratch for each org (and = the hourly rollups once the rollup job ran
    since they changed); the summary shows it. Returns each org's figures."""
    got = []
    for p in personas:
        day = await maintained_day(db_url, p.org_id)
        assert day == await scratch_day(db_url, p.org_id)
        if rolled:
            assert day == await hourly_day(db_url, p.org_id)
        await flush_for(p)
        body = (await p.get(PATH)).json()["last_24h"]
        assert (body["checks_total"], body["checks_up"]) == day
        got.append(day)
    return got


async def flush_for(p: Persona) -> None:
    app = p.client.app
    await flush(app.state.settings)


async def rollups(db_url: str) -> None:
    async with await connect(db_url) as conn:
        assert (await run_rollups(conn)).ran


async def delta_rows(db_url: str, org_id: Any) -> int:
    row = await one(
        db_url, "SELECT count(*) AS n FROM target_last_24h_org WHERE org_id = %s", org_id
    )
    return int(row["n"])


async def past_results(db_url: str, target: dict[str, Any], at: datetime, statuses: str) -> None:
    """One result a minute from ``at`` per letter: u(p), d(own), g (degraded), m(issed)."""
    names = {"u": "up", "d": "down", "g": "degraded", "m": "missed"}
    org = (await one(db_url, "SELECT org_id FROM targets WHERE id = %s", target["id"]))["org_id"]
    rows = [
        (
            uuid.UUID(target["id"]),
            "default",
            at + timedelta(minutes=i),
            org,
            names[s],
            None if s == "m" else 20.0,
        )
        for i, s in enumerate(statuses)
    ]
    async with await connect(db_url) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO results ({COLS}) VALUES (%s, %s, %s, %s, %s, %s)", rows
            )


async def lease_and_answer(agent: AgentHandle, db_url: str, target_id: str, status: str) -> None:
    await make_due(db_url, target_id)
    leases = [x for x in (await agent.lease()).json()["leases"] if x["target_id"] == target_id]
    assert len(leases) == 1
    resp = await agent.ingest([result_for(leases[0], status)])
    assert resp.json()["accepted"] == 1, resp.text


async def test_last_24h_totals_follow_ingest_rollups_disable_and_delete_per_org(
    owner: Persona, outsider: Persona, operator: Persona, db_url: str
) -> None:
    a, b, c = [await make_target(owner, name=n, interval=60) for n in "abc"]
    x = await make_target(outsider, name="x", interval=60)
    agent = await make_agent(operator)
    assert await assert_day(db_url, owner, outsider) == [(0, 0), (0, 0)]

    # Ingest (the real path) writes results, not the last 24 h: nothing moves yet.
    await lease_and_answer(agent, db_url, a["id"], "up")
    await lease_and_answer(agent, db_url, x["id"], "down")
    await assert_day(db_url, owner, outsider, rolled=False)

    # Results of three hours ago, rolled up to hours by the job, kept per target, per org.
    hour = (await one(db_url, "SELECT date_trunc('hour', now()) AS h"))["h"]
    at = hour - timedelta(hours=3)
    await past_results(db_url, a, at, "uuuud")
    await past_results(db_url, b, at, "ugdmm")
    await past_results(db_url, c, at + timedelta(minutes=30), "uu")
    await past_results(db_url, x, at, "dddu")
    await rollups(db_url)
    # a: 5 checks, 4 up; b: 3 checks (2 missed), up + degraded = 2; c: 2, 2; x: 4, 1.
    assert await assert_day(db_url, owner, outsider) == [(10, 8), (4, 1)]
    # The run folded each org's deltas into one row.
    assert await delta_rows(db_url, owner.org_id) == 1
    assert await delta_rows(db_url, outsider.org_id) == 1

    # A late result in an hour already written: the job rebuilds the hour, the totals follow.
    await past_results(db_url, b, at + timedelta(minutes=10), "d")
    async with await connect(db_url) as conn:
        await conn.execute(
            "INSERT INTO rollup_dirty (target_id, minute) VALUES (%s, %s)",
            (uuid.UUID(b["id"]), at + timedelta(minutes=10)),
        )
    await rollups(db_url)
    assert await assert_day(db_url, owner, outsider) == [(11, 8), (4, 1)]

    # The window moving on rewrites every target's row: the same totals, no drift.
    async with await connect(db_url) as conn:
        await conn.execute("UPDATE rollup_state SET day_since = NULL")
    await rollups(db_url)
    assert await assert_day(db_url, owner, outsider) == [(11, 8), (4, 1)]

    # Disabled, a target still counts (its last 24 h happened); deleted, it no longer does.
    resp = await owner.patch(f"/api/v1/targets/{b['id']}", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    assert await assert_day(db_url, owner, outsider) == [(11, 8), (4, 1)]
    assert (await owner.delete(f"/api/v1/targets/{a['id']}")).status_code == 204
    assert await assert_day(db_url, owner, outsider) == [(6, 4), (4, 1)]
    # Another org's delete moves only its own totals.
    assert (await outsider.delete(f"/api/v1/targets/{x['id']}")).status_code == 204
    assert await assert_day(db_url, owner, outsider) == [(6, 4), (0, 0)]
    await rollups(db_url)
    assert await assert_day(db_url, owner, outsider) == [(6, 4), (0, 0)]
    # Compaction drops an org whose totals are zero.
    assert await delta_rows(db_url, outsider.org_id) == 0


async def live_in_flight(db_url: str, org_id: Any) -> int:
    row = await one(
        db_url,
        "SELECT count(*) AS n FROM schedules s JOIN targets t ON t.id = s.target_id"
        " WHERE t.org_id = %s AND s.lease_expires_at > now()",
        org_id,
    )
    return int(row["n"])


async def summary_in_flight(p: Persona) -> int:
    await flush_for(p)
    return int((await p.get(PATH)).json()["system"]["in_flight_checks"])


async def snapshot(db_url: str) -> dict[str, Any]:
    async with await connect(db_url) as conn:
        return await take_snapshot(conn)


async def test_in_flight_snapshot_equals_live_counts_and_is_used_only_while_fresh(
    owner: Persona, outsider: Persona, operator: Persona, db_url: str, settings: Settings
) -> None:
    # A long timeout: the leases stay live for the whole test.
    check = {"type": "http", "url": "https://example.com/", "timeout": 60_000}
    mine = [(await make_target(owner, name=n, check=check, interval=300))["id"] for n in "abc"]
    theirs = (await make_target(outsider, name="x", check=check, interval=300))["id"]
    agent = await make_agent(operator)
    for t in [*mine, theirs]:
        await make_due(db_url, t)
    leases = {x["target_id"]: x for x in (await agent.lease()).json()["leases"]}
    assert set(leases) >= {*mine, theirs}
    assert await live_in_flight(db_url, owner.org_id) == 3
    assert await live_in_flight(db_url, outsider.org_id) == 1

    # Never taken: the summary counts live.
    assert await summary_in_flight(owner) == 3

    # The snapshot holds each org's live count, apart.
    got = await snapshot(db_url)
    assert got["orgs"] >= 2
    rows = await one(
        db_url,
        "SELECT (SELECT n FROM org_in_flight WHERE org_id = %s) AS mine,"
        " (SELECT n FROM org_in_flight WHERE org_id = %s) AS theirs",
        owner.org_id,
        outsider.org_id,
    )
    assert (rows["mine"], rows["theirs"]) == (3, 1)

    # One lease answered: the live count drops; a fresh snapshot is what the summary shows
    # (its staleness: the leases of the instant it was taken).
    resp = await agent.ingest([result_for(leases[mine[0]], "up")])
    assert resp.json()["accepted"] == 1, resp.text
    assert await live_in_flight(db_url, owner.org_id) == 2
    assert await summary_in_flight(owner) == 3
    # Older than FRESH_SECS: the summary counts live again.
    async with await connect(db_url) as conn:
        await conn.execute(
            "UPDATE in_flight_snapshot SET taken_at = now() - make_interval(secs => %s)",
            (FRESH_SECS + 1,),
        )
    assert await summary_in_flight(owner) == 2
    assert await summary_in_flight(outsider) == 1
    # The next snapshot catches up; an org with nothing in flight keeps no row.
    await snapshot(db_url)
    assert await summary_in_flight(owner) == 2
    resp = await agent.ingest([result_for(leases[theirs], "up")])
    assert resp.json()["accepted"] == 1, resp.text
    got = await snapshot(db_url)
    assert got["written"] >= 1
    gone = await one(
        db_url, "SELECT count(*) AS n FROM org_in_flight WHERE org_id = %s", outsider.org_id
    )
    assert gone["n"] == 0
    assert await summary_in_flight(outsider) == 0

    # The worker takes it every SNAPSHOT_EVERY_SECS (well within FRESH_SECS).
    worker = build_worker(settings, handle_signals=False)
    jobs = {j.name: j for j in worker.cron_jobs}
    job = jobs[f"{settings.redis.prefix}in_flight_snapshot"]
    assert job.second == set(range(0, 60, SNAPSHOT_EVERY_SECS))
    assert SNAPSHOT_EVERY_SECS * 2 < FRESH_SECS


async def test_dropped_counts_the_org_missed_slots_of_the_last_five_minutes(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    a, b = [await make_target(owner, name=n, interval=60) for n in "ab"]
    x = await make_target(outsider, name="x", interval=60)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await past_results(db_url, a, now - timedelta(minutes=3), "mmu")  # 2 missed, in the window
    await past_results(db_url, b, now - timedelta(minutes=12), "mmmm")  # too old
    await past_results(db_url, b, now - timedelta(minutes=2), "dm")  # 1 missed
    await past_results(db_url, x, now - timedelta(minutes=2), "mm")  # the other org's
    scratch = await one(
        db_url,
        "SELECT count(*) AS n FROM results r JOIN targets t ON t.id = r.target_id"
        " WHERE t.org_id = %s AND r.status = 'missed'"
        " AND r.scheduled_at >= now() - interval '5 minutes'",
        owner.org_id,
    )
    assert scratch["n"] == 3
    await flush_for(owner)
    assert (await owner.get(PATH)).json()["system"]["dropped_results_last_5m"] == 3
    await flush_for(outsider)
    assert (await outsider.get(PATH)).json()["system"]["dropped_results_last_5m"] == 2
    # A real result replacing a placeholder is no longer dropped.
    async with await connect(db_url) as conn:
        await conn.execute(
            "UPDATE results SET status = 'up' WHERE target_id = %s AND scheduled_at = %s",
            (uuid.UUID(a["id"]), now - timedelta(minutes=3)),
        )
    await flush_for(owner)
    assert (await owner.get(PATH)).json()["system"]["dropped_results_last_5m"] == 2

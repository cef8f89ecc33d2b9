"""Lease and ingest against the real control plane, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from litestar import Litestar

from control_plane.domain.agent_api.jobs import sweep_missed
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import fetch, make_agent, make_due, make_target, result_for


async def test_lease_hands_a_due_slot_with_the_decrypted_spec(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = await make_target(
        owner, check={"type": "http", "url": "https://example.com", "bearer_token": "s3cret"}
    )
    agent = await make_agent(operator)
    empty = await agent.lease()
    assert empty.status_code == 200, empty.text
    assert empty.json()["leases"] == []

    due = await make_due(db_url, target["id"])
    resp = await agent.lease()
    assert resp.status_code == 200, resp.text
    (lease,) = resp.json()["leases"]
    assert lease["target_id"] == target["id"]
    assert lease["region"] == "default"
    assert datetime.fromisoformat(lease["scheduled_at"]) == due
    assert datetime.fromisoformat(lease["expires_at"]) > datetime.fromisoformat(
        resp.json()["server_time"]
    )
    assert lease["check"]["bearer_token"] == "s3cret"
    assert lease["interval_secs"] == 60
    # Held: nobody gets it again while the lease lives.
    assert (await agent.lease()).json()["leases"] == []


async def test_two_agents_never_hold_the_same_slot(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    targets = [await make_target(owner, name=f"t{i}") for i in range(40)]
    for t in targets:
        await make_due(db_url, t["id"])
    a1 = await make_agent(operator, name="a1")
    a2 = await make_agent(operator, name="a2")
    r1, r2 = await asyncio.gather(a1.lease(max_n=30), a2.lease(max_n=30))
    ids1 = {x["target_id"] for x in r1.json()["leases"]}
    ids2 = {x["target_id"] for x in r2.json()["leases"]}
    assert not ids1 & ids2
    assert len(ids1) + len(ids2) == 40


async def test_region_comes_from_the_token(owner: Persona, operator: Persona, db_url: str) -> None:
    target = await make_target(owner)
    await make_due(db_url, target["id"])
    other = await make_agent(operator, region="eu-west")
    assert (await other.lease()).json()["leases"] == []
    # A body that tries to name a region is refused, not obeyed.
    resp = await other.persona.post("/api/agent/lease", json={"max": 5, "region": "default"})
    assert_error(resp, 400, "UNKNOWN_FIELD", "/region")


async def test_expired_lease_is_leased_again(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = await make_target(owner)
    due = await make_due(db_url, target["id"])
    a1 = await make_agent(operator, name="a1")
    a2 = await make_agent(operator, name="a2")
    (first,) = (await a1.lease()).json()["leases"]
    await fetch(
        db_url,
        "UPDATE schedules SET lease_expires_at = now() - interval '1 second' WHERE target_id = %s",
        uuid.UUID(target["id"]),
    )
    (second,) = (await a2.lease()).json()["leases"]
    assert datetime.fromisoformat(second["scheduled_at"]) == due
    assert second["lease_id"] != first["lease_id"]
    # The agent that holds the live lease stores the slot; the first agent's late copy is a
    # duplicate of the same slot, never a second row.
    ok = await a2.ingest([result_for(second)])
    assert ok.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    late = await a1.ingest([result_for(first)])
    assert late.json()["accepted"] == 0
    rows = await fetch(
        db_url, "SELECT count(*) FROM results WHERE target_id = %s", uuid.UUID(target["id"])
    )
    assert rows[0][0] == 1


async def test_ingest_is_idempotent_and_advances_the_grid(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = await make_target(owner, interval=30)
    due = await make_due(db_url, target["id"], on_grid=True)
    agent = await make_agent(operator)
    (lease,) = (await agent.lease()).json()["leases"]
    batch = [result_for(lease, "down")]
    first = await agent.ingest(batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    mark = await fetch(
        db_url,
        "SELECT dirty_at FROM evaluation_queue WHERE target_id = %s",
        uuid.UUID(target["id"]),
    )
    again = await agent.ingest(batch)
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    # The re-sent batch stored nothing and did not mark the target for a second evaluation.
    assert (
        await fetch(
            db_url,
            "SELECT dirty_at FROM evaluation_queue WHERE target_id = %s",
            uuid.UUID(target["id"]),
        )
        == mark
    )
    rows = await fetch(
        db_url,
        "SELECT status, latency_ms, dns_ms, error FROM results WHERE target_id = %s",
        uuid.UUID(target["id"]),
    )
    assert rows == [("down", 12.5, 1.0, "expected status 200, got 503")]
    (nxt,) = await fetch(
        db_url,
        "SELECT next_due_at, leased_by FROM schedules WHERE target_id = %s",
        uuid.UUID(target["id"]),
    )
    assert nxt == (due + timedelta(seconds=30), None)


async def test_ingest_rejects_bad_rows_one_by_one(
    owner: Persona, operator: Persona, db_url: str, app: Litestar
) -> None:
    t1 = await make_target(owner, name="one")
    t2 = await make_target(owner, name="two")
    await make_due(db_url, t1["id"])
    await make_due(db_url, t2["id"])
    agent = await make_agent(operator, name="a1")
    other = await make_agent(operator, name="a2")
    leases = {x["target_id"]: x for x in (await agent.lease()).json()["leases"]}
    good = result_for(leases[t1["id"]])
    forged = result_for(leases[t2["id"]], lease_id=leases[t2["id"]]["lease_id"][:-4] + "AAAA")
    moved = result_for(
        leases[t2["id"]],
        scheduled_at=(
            datetime.fromisoformat(leases[t2["id"]]["scheduled_at"]) - timedelta(seconds=60)
        ).isoformat(),
    )
    ancient = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    too_early = result_for(leases[t2["id"]], started_at=ancient, finished_at=ancient)
    resp = await agent.ingest([good, forged, moved, too_early])
    body = resp.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "UNKNOWN_LEASE"),
        (2, "LEASE_MISMATCH"),
        (3, "OUTSIDE_LEASE_WINDOW"),
    ]
    # Another agent cannot submit under this agent's lease.
    stolen = await other.ingest([result_for(leases[t2["id"]])])
    assert [r["code"] for r in stolen.json()["rejected"]] == ["UNKNOWN_LEASE"]
    # A target taken out of the region between lease and ingest.
    await ensure_region_and_move(owner, operator, t2["id"])
    resp = await agent.ingest([result_for(leases[t2["id"]])])
    assert [r["code"] for r in resp.json()["rejected"]] == ["TARGET_NOT_IN_REGION"]


async def ensure_region_and_move(owner: Persona, operator: Persona, target_id: str) -> None:
    resp = await operator.post("/operator/regions", json={"id": "us-east", "name": "US East"})
    assert resp.status_code == 201, resp.text
    resp = await owner.put(f"/api/v1/targets/{target_id}/regions", json={"regions": ["us-east"]})
    assert resp.status_code == 200, resp.text


async def test_long_poll_returns_the_slot_once_due(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = await make_target(owner)
    await make_due(db_url, target["id"], seconds_ago=-1.0, on_grid=False)  # due in 1 s
    agent = await make_agent(operator)
    resp = await agent.lease(wait_ms=10_000)
    assert [x["target_id"] for x in resp.json()["leases"]] == [target["id"]]


async def test_missed_slots_are_recorded_and_the_schedule_catches_up(
    owner: Persona, db_url: str, app: Litestar
) -> None:
    target = await make_target(owner, interval=10)
    due = await make_due(db_url, target["id"], seconds_ago=35, on_grid=False)
    missed = await sweep_missed(app.state.resources)
    assert missed == 3
    rows = await fetch(
        db_url,
        "SELECT scheduled_at, status, error_code FROM results WHERE target_id = %s"
        " ORDER BY scheduled_at",
        uuid.UUID(target["id"]),
    )
    assert rows == [(due + timedelta(seconds=10 * i), "missed", "MISSED") for i in range(3)]
    # The schedule is back on the target's grid, on the slot that is current now.
    (nxt,) = await fetch(
        db_url,
        "SELECT next_due_at > now() - interval '10 seconds' AND next_due_at <= now(),"
        " vigil_next_slot(target_id, 10, next_due_at) = next_due_at"
        " FROM schedules WHERE target_id = %s",
        uuid.UUID(target["id"]),
    )
    assert nxt == (True, True)
    # Sweeping again finds nothing more.
    assert await sweep_missed(app.state.resources) == 0


async def test_sweep_is_bounded_per_run_and_loses_nothing(
    owner: Persona, db_url: str, app: Litestar
) -> None:
    # Six schedules each three slots behind: 18 missed slots in all.
    targets = [await make_target(owner, name=f"t{i}", interval=10) for i in range(6)]
    for t in targets:
        await make_due(db_url, t["id"], seconds_ago=35, on_grid=False)
    res = app.state.resources
    # Two statements of two schedules: four schedules this run, the rest left for the next.
    assert await sweep_missed(res, batch=2, budget=100, statements=2) == 12
    # A budget of 4 placeholders: the first schedule (3) is taken, the second starts within
    # the budget and is taken whole, the third would start past it and waits.
    assert await sweep_missed(res, batch=10, budget=4, statements=1) == 6
    assert await sweep_missed(res) == 0
    rows = await fetch(
        db_url,
        "SELECT count(*), count(DISTINCT (target_id, scheduled_at)),"
        " count(*) FILTER (WHERE status <> 'missed') FROM results",
    )
    assert rows == [(18, 18, 0)]
    (moved,) = await fetch(
        db_url,
        "SELECT count(*) FILTER (WHERE next_due_at > now() - interval '10 seconds') FROM schedules",
    )
    assert moved == (6,)


async def test_leasing_sheds_the_oldest_backlog_first(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    # A region behind by 50 s: one slot just due, three from the backlog (all within their
    # 60 s interval, so all may still run).
    ages = {0.5: "fresh", 20.0: "b20", 40.0: "b40", 50.0: "b50"}
    ids = {}
    for age, name in ages.items():
        t = await make_target(owner, name=name)
        await make_due(db_url, t["id"], seconds_ago=age)
        ids[t["id"]] = name
    agent = await make_agent(operator)
    first = (await agent.lease(max_n=2)).json()["leases"]
    # The fresh slot first, then the newest of the backlog: the oldest sinks to the sweep.
    assert sorted(ids[x["target_id"]] for x in first) == ["b20", "fresh"]
    second = (await agent.lease(max_n=1)).json()["leases"]
    assert [ids[x["target_id"]] for x in second] == ["b40"]


async def test_lease_scan_is_bounded_by_the_index(db_url: str) -> None:
    # The fresh slots are an index range of a few seconds (both bounds are index conditions):
    # the backlog and the dead versions of slots behind it are never walked to fill a batch.
    from control_plane.domain.agent_api.service import Q

    params = {
        "region_id": "default",
        "agent_id": uuid.uuid4(),
        "max": 10,
        "grace_secs": 10,
        "shed_secs": 2,
    }
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("SET enable_seqscan = off")
        cur = await conn.execute("EXPLAIN " + Q.lease_due, params)
        plan = "\n".join(r[0] for r in await cur.fetchall())
    conds = [line for line in plan.splitlines() if "Index Cond" in line and "next_due_at" in line]
    assert any("next_due_at <= now()" in c and "next_due_at >" in c for c in conds), plan
    # The slots taken are updated by their row's ctid (a TID scan each), not by hashing the
    # whole table (the bench found that costing 100-200 ms per lease call at 90,000 schedules).
    assert "Tid Scan on schedules s" in plan, plan


async def test_hot_tables_keep_room_for_hot_updates_and_vacuum_early(db_url: str) -> None:
    rows = dict(
        await fetch(
            db_url,
            "SELECT relname, reloptions FROM pg_class"
            " WHERE relname IN ('schedules', 'evaluation_queue')",
        )
    )
    for table in ("schedules", "evaluation_queue"):
        opts = dict(o.split("=", 1) for o in rows[table])
        assert int(opts["fillfactor"]) <= 70, table
        assert float(opts["autovacuum_vacuum_scale_factor"]) == 0, table
        assert int(opts["autovacuum_vacuum_threshold"]) <= 5000, table
        assert float(opts["autovacuum_vacuum_cost_delay"]) == 0, table


async def test_schedules_follow_regions_and_enabled(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = await make_target(owner)
    tid = uuid.UUID(target["id"])
    count = "SELECT region_id FROM schedules WHERE target_id = %s ORDER BY 1"
    assert await fetch(db_url, count, tid) == [("default",)]
    resp = await operator.post("/operator/regions", json={"id": "eu-west", "name": "EU"})
    assert resp.status_code == 201
    resp = await owner.put(
        f"/api/v1/targets/{target['id']}/regions", json={"regions": ["default", "eu-west"]}
    )
    assert resp.status_code == 200, resp.text
    assert await fetch(db_url, count, tid) == [("default",), ("eu-west",)]
    assert (
        await owner.patch(f"/api/v1/targets/{target['id']}", json={"enabled": False})
    ).status_code == 200
    assert await fetch(db_url, count, tid) == []
    assert (
        await owner.patch(f"/api/v1/targets/{target['id']}", json={"enabled": True})
    ).status_code == 200
    assert await fetch(db_url, count, tid) == [("default",), ("eu-west",)]


async def test_offsets_spread_slots_over_the_interval(owner: Persona, db_url: str) -> None:
    rows = await fetch(
        db_url,
        "SELECT count(DISTINCT floor(o)), count(DISTINCT o), max(o - floor(o) * 1)"
        " FROM (SELECT vigil_slot_offset(gen_random_uuid(), 60) AS o"
        " FROM generate_series(1, 2000)) x",
    )
    seconds, offsets, top_ms = rows[0]
    # 2,000 targets at 60 s land on (nearly) every second of the minute, not all on :00...
    assert seconds >= 55
    # ... and within each second on their own millisecond, not all at .000 (no bursts).
    assert offsets >= 1900
    assert 0.9 <= top_ms < 1


async def test_bad_requests_and_auth(owner: Persona, operator: Persona, anon: Persona) -> None:
    agent = await make_agent(operator)
    assert_error(await agent.lease(max_n=0), 400, "VALIDATION_ERROR", "/max")
    assert_error(await agent.lease(wait_ms=60_000), 400, "VALIDATION_ERROR", "/wait_ms")
    resp = await agent.persona.post(
        "/api/agent/ingest", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "INVALID_JSON")
    resp = await agent.persona.post("/api/agent/ingest", json={"results": [{"lease_id": "x"}]})
    assert_error(resp, 400, "MISSING_FIELD")
    big = [
        result_for(
            {
                "lease_id": "x",
                "target_id": str(uuid.uuid4()),
                "scheduled_at": datetime.now(UTC).isoformat(),
            }
        )
    ] * 1001
    assert_error(await agent.ingest(big), 413, "BATCH_TOO_LARGE", "/results")
    assert_error(await anon.post("/api/agent/lease", json={}), 401, "UNAUTHORIZED")
    # An org API token is not an agent token.
    assert_error(await owner.post("/api/agent/lease", json={}), 401, "UNAUTHORIZED")
    revoke = await operator.post(f"/operator/agents/{agent.id}/revoke")
    assert revoke.status_code == 200, revoke.text
    assert_error(await agent.lease(), 401, "UNAUTHORIZED")


async def test_every_call_marks_the_agent_seen(operator: Persona) -> None:
    agent = await make_agent(operator)
    before = (await operator.get(f"/operator/agents/{agent.id}")).json()["last_seen_at"]
    assert before is None
    await agent.lease()
    seen: Any = (await operator.get(f"/operator/agents/{agent.id}")).json()["last_seen_at"]
    assert seen is not None


async def test_the_agent_row_is_written_at_most_once_a_second(
    operator: Persona, db_url: str
) -> None:
    # A busy agent calls many times a second: marking it seen is no row write on every call.
    agent = await make_agent(operator)
    await agent.lease()
    ahead = "2999-01-01T00:00:00+00:00"
    await fetch(db_url, f"UPDATE agents SET last_seen_at = '{ahead}'")  # seen "just now"
    await agent.lease()
    rows = await fetch(db_url, "SELECT last_seen_at FROM agents")
    assert [r[0].isoformat() for r in rows] == [ahead]
    await fetch(db_url, "UPDATE agents SET last_seen_at = now() - interval '2 seconds'")
    await agent.lease()
    (row,) = await fetch(db_url, "SELECT last_seen_at > now() - interval '1 second' FROM agents")
    assert row[0] is True


async def test_protocol_metrics(
    owner: Persona, operator: Persona, client: Any, db_url: str, app: Litestar
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    target = await make_target(owner)
    await make_due(db_url, target["id"])
    agent = await make_agent(operator)
    (lease,) = (await agent.lease()).json()["leases"]
    await agent.ingest([result_for(lease, "down")])
    await agent.ingest([result_for(lease, "down")])
    assert app.state.resources.monitoring is not None
    await app.state.resources.monitoring.refresh(app.state.resources.db)
    text = (await client.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    region = (("region", "default"),)
    assert samples[("vigil_agent_leases_total", region)] == 1
    assert samples[("vigil_lease_lateness_seconds_count", region)] == 1
    assert samples[("vigil_ingest_results_total", (("region", "default"), ("status", "down")))] == 1
    assert samples[("vigil_ingest_duplicates_total", region)] == 1
    assert samples[("vigil_agent_last_seen_timestamp_seconds", region)] > 0
    assert samples[("vigil_incidents_open", ())] == 0
    assert ("vigil_evaluation_lag_seconds", ()) in samples

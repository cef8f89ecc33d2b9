"""The maintained current status (``target_state``, migration 0200) and the dashboard's per-org
totals (``org_status_counts``) stay equal to what is computed from scratch by the status rules
(``vigil_target_status_of`` over every target of the org) while state changes through the
real paths: agent ingest, the incident engine opening and closing incidents, pause and resume,
disable, delete, heartbeat pings."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.domain.incidents.engine import evaluate_batch
from tests.conftest import Persona
from tests.control_plane.targets.test_targets_fleet_reads import API, http, make
from tests.monitoring_helpers import (
    AgentHandle,
    fetch,
    make_agent,
    make_due,
    make_target,
    result_for,
)


async def evaluate(db_url: str, *target_ids: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await evaluate_batch(conn, [uuid.UUID(t) for t in target_ids])


async def check_all(agent: AgentHandle, db_url: str, statuses: dict[str, str]) -> None:
    """One slot of each target made due, leased and answered in one ingest batch."""
    for target_id in statuses:
        await make_due(db_url, target_id)
    # Another target's next slot may have come due meanwhile (a slow run): left unanswered.
    leases = [x for x in (await agent.lease()).json()["leases"] if x["target_id"] in statuses]
    assert sorted(x["target_id"] for x in leases) == sorted(statuses)
    resp = await agent.ingest([result_for(x, statuses[x["target_id"]]) for x in leases])
    assert resp.json()["accepted"] == len(statuses), resp.text


async def maintained(db_url: str, org_id: Any) -> dict[str, str]:
    rows = await fetch(
        db_url, "SELECT target_id, status FROM target_state WHERE org_id = %s", org_id
    )
    return {str(r[0]): r[1] for r in rows}


async def computed(db_url: str, org_id: Any) -> dict[str, str]:
    rows = await fetch(
        db_url,
        "SELECT target_id, status FROM vigil_target_status_of("
        "ARRAY(SELECT id FROM targets WHERE org_id = %s))",
        org_id,
    )
    return {str(r[0]): r[1] for r in rows}


async def counts(db_url: str, org_id: Any) -> dict[str, int]:
    rows = await fetch(
        db_url,
        "SELECT status, sum(n) FROM org_status_counts WHERE org_id = %s GROUP BY status"
        " HAVING sum(n) <> 0",
        org_id,
    )
    return {r[0]: int(r[1]) for r in rows}


async def assert_consistent(db_url: str, *orgs: Any) -> dict[str, str]:
    """Maintained status = computed status for every target, and the org's totals = a count of
    the computed statuses; returns the first org's statuses."""
    first: dict[str, str] = {}
    for org_id in orgs:
        now = await computed(db_url, org_id)
        assert await maintained(db_url, org_id) == now
        scratch: dict[str, int] = {}
        for status in now.values():
            scratch[status] = scratch.get(status, 0) + 1
        assert await counts(db_url, org_id) == scratch
        first = first or now
    return first


async def test_maintained_status_follows_ingest_incidents_pause_disable_and_delete(
    owner: Persona, outsider: Persona, operator: Persona, db_url: str
) -> None:
    org = owner.org_id
    a, b, c = [(await make_target(owner, name=n, interval=60))["id"] for n in "abc"]
    theirs = (await make_target(outsider, name="theirs", interval=60))["id"]
    agent = await make_agent(operator)
    assert await assert_consistent(db_url, org, outsider.org_id) == dict.fromkeys(
        (a, b, c), "unknown"
    )

    # Ingest: each region's last status, in one batch for three targets.
    await check_all(agent, db_url, {a: "up", b: "down", c: "degraded"})
    assert await assert_consistent(db_url, org, outsider.org_id) == {
        a: "up",
        b: "down",
        c: "degraded",
    }
    # The other org's target changes nothing of this org's totals.
    await check_all(agent, db_url, {theirs: "down"})
    await assert_consistent(db_url, org, outsider.org_id)
    assert await counts(db_url, outsider.org_id) == {"down": 1}

    # The engine opens incidents (b down, c degraded: a 503 without Retry-After), the status
    # follows the incident's.
    for _ in range(2):
        await make_due(db_url, b)
        await make_due(db_url, c)
        leases = {x["target_id"]: x for x in (await agent.lease()).json()["leases"]}
        resp = await agent.ingest(
            [
                result_for(leases[b], "down"),
                result_for(leases[c], "degraded", error_code="UNAVAILABLE"),
            ]
        )
        assert resp.json()["accepted"] == 2, resp.text
        await evaluate(db_url, b, c)
    rows = await fetch(
        db_url,
        "SELECT target_id, status FROM incidents WHERE org_id = %s AND ended_at IS NULL",
        org,
    )
    assert {str(r[0]) for r in rows} == {b, c}
    states = await assert_consistent(db_url, org, outsider.org_id)
    assert (states[b], states[c]) == ("down", "degraded")
    # A hard failure joins c's incident: it becomes down (the incident's status moves).
    await check_all(agent, db_url, {c: "down"})
    await evaluate(db_url, c)
    assert (await assert_consistent(db_url, org))[c] == "down"

    # Recovery closes the incidents.
    for _ in range(3):
        await check_all(agent, db_url, {b: "up", c: "up"})
        await evaluate(db_url, b, c)
    assert not await fetch(
        db_url, "SELECT 1 FROM incidents WHERE ended_at IS NULL AND org_id = %s", org
    )
    assert await assert_consistent(db_url, org) == {a: "up", b: "up", c: "up"}

    # Pause and resume: paused, then the last result of each region again (not unknown).
    assert (await owner.post(f"{API}/{a}/pause")).status_code == 200
    assert (await assert_consistent(db_url, org))[a] == "paused"
    assert (await owner.post(f"{API}/{a}/resume")).status_code == 200
    assert (await assert_consistent(db_url, org))[a] == "up"

    # Disable (bulk action and PATCH) and enable again.
    resp = await owner.post(
        f"{API}/bulk-action", json={"ids": [b, c], "action": {"type": "disable"}}
    )
    assert resp.status_code == 200, resp.text
    states = await assert_consistent(db_url, org)
    assert (states[b], states[c]) == ("paused", "paused")
    assert (await owner.patch(f"{API}/{b}", json={"enabled": True})).status_code == 200
    assert (await assert_consistent(db_url, org))[b] == "up"

    # Delete (single and bulk): the rows and their counts go.
    assert (await owner.delete(f"{API}/{a}")).status_code == 204
    resp = await owner.post(f"{API}/bulk-action", json={"ids": [b], "action": {"type": "delete"}})
    assert resp.status_code == 200, resp.text
    assert await assert_consistent(db_url, org, outsider.org_id) == {c: "paused"}
    assert await counts(db_url, org) == {"paused": 1}


async def test_the_worst_region_decides_and_an_unassigned_region_takes_its_status(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    """The worst region decides; a region unassigned takes its status with it."""
    org = owner.org_id
    t = (await make_target(owner, interval=60))["id"]
    agent = await make_agent(operator)
    await check_all(agent, db_url, {t: "up"})
    other = await make_agent(operator, region="r2", name="b")
    resp = await owner.put(f"{API}/{t}/regions", json={"regions": ["default", "r2"]})
    assert resp.status_code in (200, 204), resp.text
    # Replacing the regions re-creates their schedule rows: nothing reported in them yet.
    assert (await assert_consistent(db_url, org))[t] == "unknown"
    await check_all(agent, db_url, {t: "up"})
    assert (await assert_consistent(db_url, org))[t] == "up"
    await check_all(other, db_url, {t: "error"})
    assert (await assert_consistent(db_url, org))[t] == "error"
    # r2 unassigned: its error goes with it (default's row is re-created: unknown again).
    resp = await owner.put(f"{API}/{t}/regions", json={"regions": ["default"]})
    assert resp.status_code in (200, 204), resp.text
    assert (await assert_consistent(db_url, org))[t] == "unknown"


async def test_a_heartbeat_reads_its_evaluation_state(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    org = owner.org_id
    resp = await owner.post(
        API, json={"name": "job", "check": {"type": "heartbeat", "grace": 30}, "interval": 60}
    )
    assert resp.status_code == 201, resp.text
    hb = resp.json()
    assert (await assert_consistent(db_url, org))[hb["id"]] == "unknown"
    assert (await anon.get(hb["heartbeat"]["url"])).status_code == 200
    await evaluate(db_url, hb["id"])
    assert (await assert_consistent(db_url, org))[hb["id"]] == "up"
    assert (await anon.get(hb["heartbeat"]["url"] + "/fail")).status_code == 200
    await evaluate(db_url, hb["id"])
    assert (await assert_consistent(db_url, org))[hb["id"]] == "down"


async def test_counts_after_a_mix_of_changes_and_compaction(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    """Bulk create, disable, delete and direct state writes in two orgs: each org's totals equal
    a count from scratch, before and after the deltas are folded; the orgs never mix."""
    mine = await make(owner, [http(f"m{i}", enabled=i % 5 != 0) for i in range(40)])
    theirs = await make(outsider, [http(f"o{i}") for i in range(15)])
    await fetch(
        db_url,
        "UPDATE schedules SET last_at = now(), last_status = (ARRAY['up','down','error'])[1 +"
        " abs(hashtext(target_id::text)) %% 3] WHERE target_id = ANY(%s::uuid[])",
        mine[:30] + theirs,
    )
    await fetch(
        db_url,
        "INSERT INTO incidents (id, org_id, target_id, started_at, status)"
        " SELECT gen_random_uuid(), org_id, id, now(), 'degraded' FROM targets"
        " WHERE id = ANY(%s::uuid[]) AND enabled",
        mine[10:14],
    )
    resp = await owner.post(
        f"{API}/bulk-action", json={"ids": mine[20:25], "action": {"type": "disable"}}
    )
    assert resp.status_code == 200
    resp = await owner.post(
        f"{API}/bulk-action", json={"ids": mine[:5] + theirs[:3], "action": {"type": "delete"}}
    )
    assert resp.status_code == 200
    await fetch(db_url, "UPDATE incidents SET ended_at = now() WHERE target_id = %s", mine[11])
    await assert_consistent(db_url, owner.org_id, outsider.org_id)
    before = (await counts(db_url, owner.org_id), await counts(db_url, outsider.org_id))
    assert sum(before[0].values()) == 35 and sum(before[1].values()) == 15
    await fetch(db_url, "SELECT vigil_compact_org_status_counts()")
    rows = await fetch(
        db_url, "SELECT org_id, status, count(*) FROM org_status_counts GROUP BY 1, 2"
    )
    assert all(r[2] == 1 for r in rows)
    await assert_consistent(db_url, owner.org_id, outsider.org_id)
    assert (await counts(db_url, owner.org_id), await counts(db_url, outsider.org_id)) == before
    summary = (await owner.get("/api/v1/dashboard/summary")).json()
    assert summary["targets"]["total"] == 35


async def test_concurrent_ingests_of_two_regions_leave_the_true_status(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    """Two regions' writes to the same targets in concurrent transactions: whoever locks the
    state rows last recomputes with the other's committed change, so no stale status stays."""
    org = owner.org_id
    ids = await make(owner, [http(f"c{i}") for i in range(20)])
    await fetch(db_url, "INSERT INTO regions (id, name) VALUES ('r2', 'R2') ON CONFLICT DO NOTHING")
    await fetch(
        db_url,
        "INSERT INTO target_regions (target_id, region_id) SELECT unnest(%s::uuid[]), 'r2'",
        ids,
    )
    await fetch(
        db_url,
        "UPDATE schedules SET last_at = now(), last_status = 'down'"
        " WHERE target_id = ANY(%s::uuid[])",
        ids,
    )
    assert set((await assert_consistent(db_url, org)).values()) == {"down"}

    async def region_up(region: str, order: str) -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await conn.execute(
                "UPDATE schedules SET last_status = 'up' WHERE region_id = %s"
                f" AND target_id = ANY(%s::uuid[]) AND target_id IN (SELECT unnest(%s::uuid[])"
                f" ORDER BY 1 {order})",
                (region, ids, ids),
            )
            await asyncio.sleep(0.2)
            await conn.commit()

    await asyncio.gather(region_up("default", "ASC"), region_up("r2", "DESC"))
    assert set((await assert_consistent(db_url, org)).values()) == {"up"}

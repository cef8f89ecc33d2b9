"""The incident engine over real ingest and the real database, plus the reads that show it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from litestar import Litestar
from psycopg.rows import dict_row

from control_plane.domain.incidents.engine import evaluate_target
from control_plane.domain.incidents.jobs import evaluate_targets
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import AgentHandle, make_agent, make_due, make_target, result_for


class Probe:
    """Runs numbered slots of one target from several regions' agents, oldest slot first."""

    def __init__(self, app: Litestar, db_url: str, target: dict[str, Any]) -> None:
        self.app, self.db_url, self.target = app, db_url, target
        self.slot = 0

    async def round(self, outcomes: dict[AgentHandle, str]) -> None:
        """One slot in every given region, each with its status, then one evaluation."""
        self.slot += 1
        for agent, status in outcomes.items():
            await make_due_in(self.db_url, self.target["id"], agent.region, 3000 - self.slot * 60)
            (lease,) = (await agent.lease()).json()["leases"]
            resp = await agent.ingest([result_for(lease, status)])
            assert resp.json()["accepted"] == 1, resp.text
        await evaluate_targets({"resources": self.app.state.resources}, [self.target["id"]])


# These tests replay an hour of history one slot a minute, so their targets' interval is an hour:
# an agent is never leased a slot older than its interval (ARCHITECTURE: late slots are missed).
HISTORY_INTERVAL = 3600


async def make_due_in(db_url: str, target_id: str, region: str, seconds_ago: int) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE schedules SET next_due_at = now() - make_interval(secs => %s),"
            " leased_by = NULL, lease_expires_at = NULL WHERE target_id = %s AND region_id = %s",
            (seconds_ago, uuid.UUID(target_id), region),
        )


async def two_region_target(
    owner: Persona, operator: Persona, policy: Any, confirmations: int = 2
) -> tuple[dict[str, Any], AgentHandle, AgentHandle]:
    east = await make_agent(operator, region="us-east", name="east")
    west = await make_agent(operator, region="eu-west", name="west")
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy=policy, alert_confirmations=confirmations
    )
    resp = await owner.put(
        f"/api/v1/targets/{target['id']}/regions", json={"regions": ["eu-west", "us-east"]}
    )
    assert resp.status_code == 200, resp.text
    return target, east, west


async def incidents(owner: Persona, target_id: str) -> list[dict[str, Any]]:
    resp = await owner.get(f"/api/v1/targets/{target_id}/incidents")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_policy_all_ignores_a_one_region_outage_and_any_opens(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, east, west = await two_region_target(owner, operator, "all")
    probe = Probe(app, db_url, target)
    for _ in range(3):
        await probe.round({east: "down", west: "up"})
    assert await incidents(owner, target["id"]) == []
    # The other region agrees: now it opens, once, naming both regions.
    await probe.round({east: "down", west: "down"})
    assert await incidents(owner, target["id"]) == []  # one bad result is not confirmed yet
    await probe.round({east: "down", west: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is None and inc["duration_secs"] is None
    assert inc["regions"] == ["eu-west", "us-east"]
    assert inc["error_sample"] == "expected status 200, got 503"
    assert inc["status"] == "down"

    target_any, east_any, west_any = target, east, west
    resp = await owner.patch(f"/api/v1/targets/{target_any['id']}", json={"region_policy": "any"})
    assert resp.status_code == 200, resp.text
    # Recovery in one region: with "any" the other region still fails, so it stays open.
    await probe.round({east_any: "up", west_any: "down"})
    await probe.round({east_any: "up", west_any: "down"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is None
    await probe.round({east_any: "up", west_any: "up"})
    await probe.round({east_any: "up", west_any: "up"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is not None and inc["duration_secs"] >= 0


async def test_policy_any_opens_on_one_region(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, east, west = await two_region_target(owner, operator, "any", confirmations=1)
    probe = Probe(app, db_url, target)
    await probe.round({east: "up", west: "up"})
    await probe.round({east: "down", west: "up"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["regions"] == ["us-east"]
    org_wide = (await owner.get("/api/v1/incidents?ongoing_only=true")).json()
    assert [i["id"] for i in org_wide["items"]] == [inc["id"]]
    await probe.round({east: "up", west: "up"})
    (closed,) = await incidents(owner, target["id"])
    assert closed["ended_at"] is not None
    assert (await owner.get("/api/v1/incidents?ongoing_only=true")).json()["items"] == []


async def test_missed_and_error_never_count_as_down(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy="any", alert_confirmations=1
    )
    probe = Probe(app, db_url, target)
    for status in ("error", "degraded", "error"):
        await probe.round({agent: status})
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status)"
            " SELECT id, 'default', now() - interval '5 seconds', org_id, 'missed'"
            " FROM targets WHERE id = %s",
            (uuid.UUID(target["id"]),),
        )
    await evaluate_targets({"resources": app.state.resources}, [target["id"]])
    assert await incidents(owner, target["id"]) == []
    uptime = (await owner.get(f"/api/v1/targets/{target['id']}/uptime")).json()
    assert uptime == {
        "total": 3,
        "up": 0,
        "down": 0,
        "degraded": 1,
        "error": 2,
        "missed": 1,
        "uptime_pct": 33.333,
    }


async def test_concurrent_evaluations_open_one_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy="any", alert_confirmations=1
    )
    await make_due(db_url, target["id"], 120, on_grid=False)
    (lease,) = (await agent.lease()).json()["leases"]
    assert (await agent.ingest([result_for(lease, "down")])).json()["accepted"] == 1

    async def evaluate() -> Any:
        async with await psycopg.AsyncConnection.connect(
            db_url, autocommit=True, row_factory=dict_row
        ) as conn:
            return await evaluate_target(conn, uuid.UUID(target["id"]))

    outcomes = await asyncio.gather(*(evaluate() for _ in range(6)))
    assert sum(1 for o in outcomes if o.opened) == 1
    # Evaluating again changes nothing.
    again = await evaluate()
    assert again.opened is None and again.results == 0
    assert len(await incidents(owner, target["id"])) == 1


async def test_results_and_uptime_reads(
    owner: Persona, outsider: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(owner, interval=HISTORY_INTERVAL)
    probe = Probe(app, db_url, target)
    for status in ("up", "down", "up", "degraded"):
        await probe.round({agent: status})
    base = f"/api/v1/targets/{target['id']}"
    page = (await owner.get(f"{base}/results")).json()
    assert page["total"] == 4 and page["limit"] == 1000 and page["offset"] == 0
    stamps = [r["timestamp"] for r in page["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert [r["status"] for r in page["items"]] == ["degraded", "up", "down", "up"]
    first = page["items"][0]
    assert first["region"] == "default" and first["timings"]["dns_ms"] == 1.0
    assert first["latency_ms"] == 12.5
    two = (await owner.get(f"{base}/results", params={"limit": 2, "offset": 1})).json()
    assert [r["status"] for r in two["items"]] == ["up", "down"] and two["total"] == 4
    assert (await owner.get(f"{base}/results", params={"region": "nowhere"})).json()["total"] == 0
    uptime = (await owner.get(f"{base}/uptime")).json()
    assert uptime["total"] == 4 and uptime["up"] == 2 and uptime["uptime_pct"] == 75.0
    now = datetime.now(UTC)
    bad = {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()}
    for path in ("results", "uptime", "incidents"):
        assert_error(await owner.get(f"{base}/{path}", params=bad), 400, "BAD_TIME_RANGE")
        assert_error(
            await owner.get(f"{base}/{path}", params={"from": "yesterday"}),
            400,
            "INVALID_QUERY_PARAM",
        )
        # Another org's target does not exist, whatever the path.
        assert_error(await outsider.get(f"{base}/{path}"), 404, "TARGET_NOT_FOUND")
        assert_error(
            await owner.get(f"/api/v1/targets/{uuid.uuid4()}/{path}"), 404, "TARGET_NOT_FOUND"
        )
        assert_error(await owner.get(f"/api/v1/targets/nope/{path}"), 404, "TARGET_NOT_FOUND")
    assert_error(
        await owner.get(f"{base}/results", params={"limit": 0}), 400, "INVALID_QUERY_PARAM"
    )
    capped = (await owner.get(f"{base}/results", params={"limit": 50_000})).json()
    assert capped["limit"] == 10_000
    # The outsider's org-wide list never shows our incidents.
    assert (await outsider.get("/api/v1/incidents")).json()["total"] == 0

"""After an outage the agents resume, they do not catch up: a slot more than its own interval
late is never leased (the sweep records it missed and the schedule jumps to the present), and an
agent that stops gives back what it had not started."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from litestar import Litestar

from control_plane.domain.agent_api.jobs import sweep_missed
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import fetch, make_agent, make_due, make_target


async def test_a_slot_later_than_its_interval_is_never_leased_but_recorded_missed(
    owner: Persona, operator: Persona, db_url: str, app: Litestar
) -> None:
    target = await make_target(owner, interval=10)
    agent = await make_agent(operator)
    # The control plane was away for 35 s: the target's slot is three intervals behind.
    await make_due(db_url, target["id"], seconds_ago=35, on_grid=False)
    assert (await agent.lease()).json()["leases"] == []
    assert await sweep_missed(app.state.resources) == 3
    # One probe, of the slot that is current now; none of the three it missed.
    (lease,) = (await agent.lease()).json()["leases"]
    scheduled = datetime.fromisoformat(lease["scheduled_at"])
    assert datetime.now(UTC) - scheduled < timedelta(seconds=10)
    assert (await agent.lease()).json()["leases"] == []


async def test_release_gives_unstarted_slots_back_to_the_region_at_once(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    targets = [await make_target(owner, name=f"t{i}") for i in range(3)]
    for t in targets:
        await make_due(db_url, t["id"])
    leaving = await make_agent(operator, name="leaving")
    staying = await make_agent(operator, name="staying")
    leases = (await leaving.lease()).json()["leases"]
    assert len(leases) == 3
    assert (await staying.lease()).json()["leases"] == []  # held by the other agent

    # It stops having started only the first: the other two go back.
    ids = [lease["lease_id"] for lease in leases[1:]]
    resp = await leaving.persona.post("/api/agent/release", json={"lease_ids": ids})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"released": 2}
    taken = (await staying.lease()).json()["leases"]
    assert sorted(x["target_id"] for x in taken) == sorted(x["target_id"] for x in leases[1:])
    # Releasing again, or another agent's leases, or the started one's by the wrong agent: no-ops.
    again = await leaving.persona.post("/api/agent/release", json={"lease_ids": ids})
    assert again.json() == {"released": 0}
    foreign = await staying.persona.post(
        "/api/agent/release", json={"lease_ids": [leases[0]["lease_id"]]}
    )
    assert foreign.json() == {"released": 0}
    (held,) = await fetch(
        db_url,
        "SELECT count(*) FROM schedules WHERE target_id = %s AND leased_by IS NOT NULL",
        uuid.UUID(leases[0]["target_id"]),
    )
    assert held == (1,)


async def test_release_refuses_bad_input(operator: Persona) -> None:
    agent = await make_agent(operator)
    for body, code in (
        ({"lease_ids": "x"}, "VALIDATION_ERROR"),
        ({"lease_ids": ["a"] * 501}, "BATCH_TOO_LARGE"),
        ({}, "MISSING_FIELD"),
    ):
        resp = await agent.persona.post("/api/agent/release", json=body)
        assert resp.status_code in (400, 413), resp.text
        assert resp.json()["error"]["code"] == code
    # Garbage ids are simply not leases of this agent.
    resp = await agent.persona.post("/api/agent/release", json={"lease_ids": ["nope", ""]})
    assert resp.json() == {"released": 0}
    assert_error(
        await operator.post("/api/agent/release", json={"lease_ids": []}), 401, "UNAUTHORIZED"
    )

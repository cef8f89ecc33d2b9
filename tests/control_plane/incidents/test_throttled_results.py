"""A result the agent's per-host throttle held back (degraded, error_code THROTTLED) goes through
real ingest and evaluation as neither a failure nor a recovery."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from litestar import Litestar
from psycopg.rows import dict_row

from control_plane.domain.incidents.jobs import evaluate_targets
from tests.conftest import Persona
from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, incidents, make_due_in
from tests.monitoring_helpers import AgentHandle, make_agent, make_target, result_for

THROTTLED = {"error": "throttled: host concurrency cap", "error_code": "THROTTLED"}


class Slots:
    """Runs numbered slots of one target in one region, oldest first, each evaluated."""

    def __init__(self, app: Litestar, db_url: str, target: dict[str, Any], agent: AgentHandle):
        self.app, self.db_url, self.target, self.agent = app, db_url, target, agent
        self.slot = 0

    async def run(self, status: str, **extra: Any) -> None:
        self.slot += 1
        await make_due_in(self.db_url, self.target["id"], self.agent.region, 3000 - self.slot * 60)
        (lease,) = (await self.agent.lease()).json()["leases"]
        body = result_for(lease, status, **extra)
        if extra.get("error_code") == "THROTTLED":
            body.update(latency_ms=None, status_code=None, timings={})
        resp = await self.agent.ingest([body])
        assert resp.json()["accepted"] == 1, resp.text
        await evaluate_targets({"resources": self.app.state.resources}, [self.target["id"]])

    async def region_state(self) -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT consecutive_bad, consecutive_good, failing, last_status"
                " FROM region_states WHERE target_id = %s",
                (uuid.UUID(self.target["id"]),),
            )
            row = await cur.fetchone()
        assert row is not None
        return dict(row)


async def test_throttled_results_never_open_an_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy="any", alert_confirmations=1
    )
    slots = Slots(app, db_url, target, agent)
    await slots.run("down")  # one bad result: counting starts
    before = await slots.region_state()
    assert before["consecutive_bad"] == 1 and before["failing"] is True
    await slots.run("up")
    assert await slots.region_state() == {
        "consecutive_bad": 0,
        "consecutive_good": 1,
        "failing": False,
        "last_status": "up",
    }
    for _ in range(3):
        await slots.run("degraded", **THROTTLED)
    # The counters and the last reported status are where the last real result left them.
    assert await slots.region_state() == {
        "consecutive_bad": 0,
        "consecutive_good": 1,
        "failing": False,
        "last_status": "up",
    }
    (inc,) = await incidents(owner, target["id"])  # the one opened by the single "down"
    assert inc["ended_at"] is not None


async def test_throttled_results_do_not_close_an_open_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy="any", alert_confirmations=2
    )
    slots = Slots(app, db_url, target, agent)
    await slots.run("down")
    await slots.run("down")
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is None
    for _ in range(3):
        await slots.run("degraded", **THROTTLED)
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is None, "a throttled result counted as a recovery"
    state = await slots.region_state()
    assert state["failing"] is True and state["consecutive_good"] == 0
    assert state["last_status"] == "down"
    # A throttled result between two downs does not break the run either; real ups close it.
    await slots.run("up")
    await slots.run("degraded", **THROTTLED)
    await slots.run("up")
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is not None


async def test_a_degraded_result_that_is_not_throttled_still_counts_as_good(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(
        owner, interval=HISTORY_INTERVAL, region_policy="any", alert_confirmations=2
    )
    slots = Slots(app, db_url, target, agent)
    await slots.run("down")
    await slots.run("down")
    await slots.run("degraded", error="2 of 3 echo requests lost", error_code="PACKET_LOSS")
    await slots.run("degraded", error="rate-limited 429", error_code="RATE_LIMITED")
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is not None

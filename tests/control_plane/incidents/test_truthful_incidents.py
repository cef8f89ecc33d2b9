"""An incident's times and status tell the truth (issue: the hidden three-region scenario).

- It starts where the policy's quorum formed, not at an unrelated early failure of a lossy
  region that happens to be failing too.
- It ends at the first good result of the recovery run, as it starts at the first failure.
- A service answering 429/503 without Retry-After for longer than the confirmations opens an
  incident of status ``degraded``; with Retry-After it is backing us off and opens nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Litestar

from control_plane.domain.incidents.jobs import evaluate_targets
from control_plane.domain.incidents.policy import (
    IMPAIRED,
    RegionCounters,
    apply_result,
    counted_status,
    needed,
    quorum_end,
    quorum_start,
)
from tests.conftest import Persona
from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, incidents, make_due_in
from tests.monitoring_helpers import AgentHandle, make_agent, make_target, result_for

T = [datetime(2026, 5, 1, 12, m, tzinfo=UTC) for m in range(10)]


class Rounds:
    """Numbered slots of one target from several regions, oldest first; remembers when each
    region's slot of each round was."""

    def __init__(self, app: Litestar, db_url: str, target: dict[str, Any]) -> None:
        self.app, self.db_url, self.target = app, db_url, target
        self.slots: list[dict[str, str]] = []

    async def round(self, outcomes: dict[AgentHandle, str | tuple[str, str]]) -> None:
        n = len(self.slots) + 1
        at: dict[str, str] = {}
        for agent, outcome in outcomes.items():
            status, code = outcome if isinstance(outcome, tuple) else (outcome, None)
            await make_due_in(self.db_url, self.target["id"], agent.region, 3000 - n * 60)
            (lease,) = (await agent.lease()).json()["leases"]
            extra = {"error_code": code} if code else {}
            resp = await agent.ingest([result_for(lease, status, **extra)])
            assert resp.json()["accepted"] == 1, resp.text
            at[agent.region] = lease["scheduled_at"]
        self.slots.append(at)
        await evaluate_targets({"resources": self.app.state.resources}, [self.target["id"]])


def same_time(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


async def regions_target(
    owner: Persona, operator: Persona, regions: list[str], **fields: Any
) -> tuple[dict[str, Any], list[AgentHandle]]:
    agents = [await make_agent(operator, region=r, name=r) for r in regions]
    target = await make_target(owner, **({"interval": HISTORY_INTERVAL} | fields))
    resp = await owner.put(f"/api/v1/targets/{target['id']}/regions", json={"regions": regions})
    assert resp.status_code == 200, resp.text
    return target, agents


async def test_a_lossy_regions_early_streak_does_not_date_the_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, (east, lossy, west) = await regions_target(
        owner, operator, ["us-east", "ap-lossy", "eu-west"], alert_confirmations=2
    )
    rounds = Rounds(app, db_url, target)
    # The lossy region fails on its own for a while: one of three is not a majority.
    await rounds.round({lossy: "down", east: "up", west: "up"})
    await rounds.round({lossy: "down", east: "up", west: "up"})
    assert await incidents(owner, target["id"]) == []
    # Then the real outage: east and west fail together, confirmed one round later.
    await rounds.round({lossy: "down", east: "down", west: "down"})
    await rounds.round({lossy: "down", east: "down", west: "down"})
    (inc,) = await incidents(owner, target["id"])
    # It started when the quorum formed (east's and west's first failure), not at the lossy
    # region's streak two rounds before.
    assert same_time(inc["started_at"], rounds.slots[2]["us-east"]), inc
    assert not same_time(inc["started_at"], rounds.slots[0]["ap-lossy"])


async def test_an_incident_ends_at_the_first_good_result_of_its_recovery(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, (east,) = await regions_target(
        owner, operator, ["us-east"], alert_confirmations=2, region_policy="any"
    )
    rounds = Rounds(app, db_url, target)
    for _ in range(2):
        await rounds.round({east: "down"})
    await rounds.round({east: "up"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is None  # one good result does not confirm the recovery
    await rounds.round({east: "up"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["ended_at"] is not None
    # The recovery began with the first good result, not the confirming one.
    assert same_time(inc["ended_at"], rounds.slots[2]["us-east"]), inc
    assert same_time(inc["started_at"], rounds.slots[0]["us-east"]), inc
    # Two rounds apart: 120 s of slot time plus however long the rounds took on the wall clock
    # (each round's slot is placed relative to now).
    span = datetime.fromisoformat(rounds.slots[2]["us-east"]) - datetime.fromisoformat(
        rounds.slots[0]["us-east"]
    )
    assert span.total_seconds() >= 120
    assert inc["duration_secs"] == int(span.total_seconds())


async def test_503_without_retry_after_opens_a_degraded_incident_and_with_it_nothing(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, (east,) = await regions_target(
        owner, operator, ["us-east"], alert_confirmations=2, region_policy="any"
    )
    rounds = Rounds(app, db_url, target)
    # Backing us off with Retry-After: the service is up, however long it lasts.
    for _ in range(3):
        await rounds.round({east: ("degraded", "RATE_LIMITED")})
    assert await incidents(owner, target["id"]) == []
    # A 503 without Retry-After for longer than the confirmations: a degraded incident.
    for _ in range(2):
        await rounds.round({east: ("degraded", "UNAVAILABLE")})
    (inc,) = await incidents(owner, target["id"])
    assert inc["status"] == "degraded" and inc["ended_at"] is None
    assert same_time(inc["started_at"], rounds.slots[3]["us-east"])
    # A hard failure joins it: it is down from then on, and stays so.
    await rounds.round({east: "down"})
    await rounds.round({east: ("degraded", "UNAVAILABLE")})
    (inc,) = await incidents(owner, target["id"])
    assert inc["status"] == "down"
    for _ in range(2):
        await rounds.round({east: "up"})
    (inc,) = await incidents(owner, target["id"])
    assert inc["status"] == "down" and inc["ended_at"] is not None


def test_the_status_counted_for_429_and_503() -> None:
    assert counted_status("degraded", "UNAVAILABLE") == IMPAIRED
    assert counted_status("degraded", "RATE_LIMITED") == "degraded"
    assert counted_status("degraded", "THROTTLED") == "throttled"
    assert counted_status("down", "UNAVAILABLE") == "down"


def test_quorum_start_is_when_the_kth_region_began_failing() -> None:
    lossy, a, b = T[0], T[5], T[6]
    assert quorum_start([lossy, a, b], needed("majority", 3)) == a
    assert quorum_start([lossy, a, b], needed("any", 3)) == lossy
    assert quorum_start([lossy, a, b], needed("all", 3)) == b
    assert quorum_start([a, b], needed({"count": 2}, 3)) == b
    assert quorum_start([], 2) is None


def test_quorum_end_is_when_the_failing_count_fell_below_k() -> None:
    # Three failing, majority (k=2): the second recovery breaks it.
    assert quorum_end([T[7], T[8], T[9]], still_failing=0, k=2) == T[8]
    # One still failing and two recovered, majority of three: the second recovery leaves one.
    assert quorum_end([T[7], T[8]], still_failing=1, k=2) == T[8]
    # The same with "all" (k=3): the first recovery already breaks it.
    assert quorum_end([T[7], T[8]], still_failing=1, k=3) == T[7]
    assert quorum_end([T[4]], still_failing=0, k=1) == T[4]
    assert quorum_end([], still_failing=0, k=1) is None


def test_counters_remember_where_the_recovery_began_and_how_hard_the_failure_was() -> None:
    state = RegionCounters()
    state = apply_result(state, IMPAIRED, 2, T[0])
    state = apply_result(state, IMPAIRED, 2, T[1])
    assert state.failing and not state.hard and state.failing_since == T[0]
    state = apply_result(state, "down", 2, T[2])
    assert state.hard
    state = apply_result(state, "up", 2, T[3])
    assert state.failing and state.good_since == T[3]
    state = apply_result(state, "down", 2, T[4])  # the recovery run is broken
    assert state.good_since is None and state.hard
    state = apply_result(state, "up", 2, T[5])
    state = apply_result(state, "up", 2, T[6])
    assert not state.failing and state.good_since == T[5] and not state.hard
    # A new bad run starts soft again.
    state = apply_result(state, IMPAIRED, 2, T[7])
    assert not state.hard and state.failing_since == T[7]

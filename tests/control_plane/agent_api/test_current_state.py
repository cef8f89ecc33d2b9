"""What ingest keeps of each result (issue 16): the region's last result on its schedule row, and
the evaluation of a steady ``up`` folded in place of a round trip through the queue (issue 18)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.domain.incidents.engine import evaluate_batch
from tests.conftest import Persona
from tests.monitoring_helpers import (
    AgentHandle,
    fetch,
    make_agent,
    make_due,
    make_target,
    result_for,
)


async def check(agent: AgentHandle, db_url: str, target_id: str, status: str, **extra: Any) -> str:
    """One slot of the target made due, leased and answered with ``status``; its slot."""
    await make_due(db_url, target_id)
    leases = (await agent.lease()).json()["leases"]
    assert [x["target_id"] for x in leases] == [target_id]
    resp = await agent.ingest([result_for(leases[0], status, **extra)])
    assert resp.json() == {"accepted": 1, "duplicates": 0, "rejected": []}, resp.text
    slot: str = leases[0]["scheduled_at"]
    return slot


async def evaluate(db_url: str, target_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await evaluate_batch(conn, [uuid.UUID(target_id)])


async def marks(db_url: str, target_id: str) -> int:
    rows = await fetch(
        db_url, "SELECT count(*) FROM evaluation_queue WHERE target_id = %s", target_id
    )
    return int(rows[0][0])


async def state(db_url: str, target_id: str) -> tuple[Any, ...]:
    rows = await fetch(
        db_url,
        "SELECT consecutive_good, consecutive_bad, failing, evaluated_to, last_reported_at,"
        " last_status FROM region_states WHERE target_id = %s",
        target_id,
    )
    assert len(rows) == 1
    return rows[0]


async def last(db_url: str, target_id: str) -> tuple[Any, ...]:
    rows = await fetch(
        db_url,
        "SELECT last_at, last_status, last_latency_ms, last_status_code, last_error,"
        " last_error_code FROM schedules WHERE target_id = %s",
        target_id,
    )
    assert len(rows) == 1
    return rows[0]


async def test_an_unchanged_up_is_folded_without_a_mark_and_a_change_is_marked(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = (await make_target(owner, interval=10))["id"]
    agent = await make_agent(operator)
    # The first result: nothing known of the region yet, so it goes through the queue.
    first = await check(agent, db_url, target, "up")
    assert await marks(db_url, target) == 1
    await evaluate(db_url, target)
    assert await marks(db_url, target) == 0
    good, bad, failing, evaluated_to, reported, status = await state(db_url, target)
    assert (good, bad, failing, status) == (1, 0, False, "up")
    assert evaluated_to.isoformat() == reported.isoformat()

    # up after up, no incident: folded by ingest, exactly as the engine would, and not marked.
    second = await check(agent, db_url, target, "up", latency_ms=7.25)
    assert await marks(db_url, target) == 0
    good, bad, failing, evaluated_to, reported, status = await state(db_url, target)
    assert (good, bad, failing, status) == (2, 0, False, "up")
    assert evaluated_to == reported and evaluated_to > ts(first)
    assert evaluated_to == ts(second)
    at, last_status, latency, code, error, _ = await last(db_url, target)
    assert (at, last_status, latency, code, error) == (ts(second), "up", 7.25, 200, None)
    # The engine finds nothing left to fold: the watermark is where ingest put it.
    await evaluate(db_url, target)
    assert (await state(db_url, target))[0] == 2

    # A change (down) is marked and the evaluation sees it.
    third = await check(agent, db_url, target, "down", error_code="HTTP_STATUS")
    assert await marks(db_url, target) == 1
    at, last_status, _, code, error, error_code = await last(db_url, target)
    assert (at, last_status, code, error_code) == (ts(third), "down", 503, "HTTP_STATUS")
    assert error == "expected status 200, got 503"
    await evaluate(db_url, target)
    good, bad, *_ = await state(db_url, target)
    assert (good, bad) == (0, 1)
    # Back to up after a down: marked (the previous status was not up).
    await check(agent, db_url, target, "up")
    assert await marks(db_url, target) == 1


async def test_an_up_with_an_open_incident_is_marked(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = (await make_target(owner, interval=10))["id"]
    agent = await make_agent(operator)
    await check(agent, db_url, target, "up")
    await evaluate(db_url, target)
    await fetch(
        db_url,
        "INSERT INTO incidents (id, org_id, target_id, started_at, status)"
        " SELECT %s, org_id, id, now(), 'down' FROM targets WHERE id = %s",
        uuid.uuid4(),
        target,
    )
    await check(agent, db_url, target, "up")
    assert await marks(db_url, target) == 1


async def test_a_late_result_never_overwrites_a_newer_last_result(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    target = (await make_target(owner, interval=10))["id"]
    agent = await make_agent(operator)
    # A slot leased and not answered yet (the agent spools it)...
    await make_due(db_url, target, seconds_ago=3.0)
    old = (await agent.lease()).json()["leases"]
    assert len(old) == 1
    # ...the next slot is answered first...
    newer = await check(agent, db_url, target, "up")
    # ...then the spooled one arrives: stored, but the last result stays the newer one.
    resp = await agent.ingest([result_for(old[0], "down")])
    assert resp.json()["accepted"] == 1, resp.text
    at, status, *_ = await last(db_url, target)
    assert (at, status) == (ts(newer), "up")
    got = (await owner.get(f"/api/v1/targets/{target}")).json()
    assert got["status"] == "up" and got["last_result"]["status"] == "up"
    assert ts(got["last_result"]["at"]) == ts(newer)


def ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)

"""A result that arrives after its minute was settled (an agent's spool drained after a long
API outage) is rolled up anyway, found by its arrival: ingest marks nothing, the next rollup run
recomputes its minute and hour, and /uptime counts exactly what the raw results hold again; so
does a catch-up run (the worker was down for more than a day), whose range by slot time starts
after the late slot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar

from control_plane.domain.agent_api.lease_ids import LeaseClaim, LeaseSigner
from control_plane.domain.results.rollups import MARGIN_SECS, floor_minute
from tests.conftest import Persona
from tests.control_plane.results.test_rollups import connect, raw_uptime, run
from tests.monitoring_helpers import make_agent, make_target, result_for
from tests.stack import TOKEN_KEY


async def test_a_result_later_than_the_settling_window_is_rolled_up(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(owner, interval=60)
    tid = uuid.UUID(target["id"])
    # A slot from well before the settling window (interval + margin) of now, in an hour that
    # is settled too (its hourly row is written, so the late row must be put in it).
    settled_hour = floor_minute(datetime.now(UTC) - timedelta(seconds=60 + MARGIN_SECS)).replace(
        minute=0
    )
    slot = settled_hour - timedelta(minutes=30)
    assert await run(db_url)  # the rollups settle everything up to now
    before = await raw_uptime(db_url, target["id"], slot, slot + timedelta(minutes=1))
    assert before["total"] == 0

    await _late_result(agent, target, slot)

    async with await connect(db_url) as conn:
        # Ingest writes nothing but the result and its schedule for it: the run finds it.
        assert await (await conn.execute("SELECT * FROM rollup_dirty")).fetchall() == []

    await run(db_url)
    async with await connect(db_url) as conn:
        assert await (await conn.execute("SELECT * FROM rollup_dirty")).fetchall() == []
        minute, hour = await _rollups_of(conn, tid, slot)
    assert minute == {"total": 1, "down": 1}
    assert hour == {"total": 1, "down": 1}
    # /uptime over the settled minute agrees with the raw rows again.
    params = {"from": slot.isoformat(), "to": (slot + timedelta(minutes=1)).isoformat()}
    got = (await owner.get(f"/api/v1/targets/{tid}/uptime", params=params)).json()
    raw = await raw_uptime(db_url, target["id"], slot, slot + timedelta(minutes=1))
    assert (got["total"], got["down"]) == (raw["total"], raw["down"]) == (1, 1)


async def _late_result(agent: Any, target: dict[str, Any], slot: datetime) -> None:
    """The agent leased ``slot`` then (a lease id it kept in its spool) and sends it now."""
    claim = LeaseClaim(
        target_id=uuid.UUID(target["id"]),
        agent_id=uuid.UUID(agent.id),
        region_id="default",
        scheduled_at=slot,
        expires_at=slot + timedelta(seconds=20),
    )
    lease: dict[str, Any] = {
        "lease_id": LeaseSigner(TOKEN_KEY).issue(claim),
        "target_id": target["id"],
        "scheduled_at": slot.isoformat(),
    }
    late = result_for(lease, "down")
    late["started_at"] = late["finished_at"] = (slot + timedelta(seconds=1)).isoformat()
    answer = (await agent.ingest([late])).json()
    assert answer["accepted"] == 1, answer


async def test_a_late_result_before_a_catch_up_runs_range_is_rolled_up(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(owner, interval=60)
    tid = uuid.UUID(target["id"])
    slot = floor_minute(datetime.now(UTC) - timedelta(days=3))
    assert await run(db_url)
    await _late_result(agent, target, slot)
    async with await connect(db_url) as conn:
        # The worker was down for two days: the next run catches up by slot time from two days
        # ago, after the late slot; the late row is found by its arrival instead.
        await conn.execute("UPDATE rollup_state SET ran_at = now() - interval '2 days'")
    await run(db_url)
    async with await connect(db_url) as conn:
        assert await (await conn.execute("SELECT * FROM rollup_dirty")).fetchall() == []
        minute, hour = await _rollups_of(conn, tid, slot)
    assert minute == {"total": 1, "down": 1}
    assert hour == {"total": 1, "down": 1}


async def test_results_on_time_mark_nothing(owner: Persona, operator: Persona, db_url: str) -> None:
    from tests.monitoring_helpers import make_due

    agent = await make_agent(operator)
    target = await make_target(owner, interval=60)
    await make_due(db_url, target["id"])
    (lease,) = (await agent.lease()).json()["leases"]
    assert (await agent.ingest([result_for(lease)])).json()["accepted"] == 1
    async with await connect(db_url) as conn:
        assert await (await conn.execute("SELECT * FROM rollup_dirty")).fetchall() == []


async def _rollups_of(conn: Any, tid: Any, slot: datetime) -> tuple[Any, Any]:
    """The slot's minute rollup and its hour's rollup of the target (``total``, ``down``)."""
    minute = await (
        await conn.execute(
            "SELECT total, down FROM result_rollups WHERE target_id = %s AND minute = %s",
            (tid, slot),
        )
    ).fetchone()
    hour = await (
        await conn.execute(
            "SELECT total, down FROM result_rollups_hourly"
            " WHERE target_id = %s AND hour = date_trunc('hour', %s::timestamptz)",
            (tid, slot),
        )
    ).fetchone()
    return minute, hour

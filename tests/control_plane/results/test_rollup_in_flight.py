"""A result still being written while a rollup run starts is counted (README: "the counts are
exactly those of the raw results").

Ingest stamps its rows with its own transaction's start (``received_at``); a run settles minutes
by the database clock when it starts and reads what arrived since the previous run's arrival
watermark. An ingest slowed down by a loaded machine can begin before a run and commit after it
read the rows. Its result for a slot just at the settling edge is then not seen by that run, and
unless both watermarks wait for the write in flight, the next run does not read it either: the
rollups (and /uptime over that minute) lose the result for good.

The test holds the ingest statement's transaction open (the statement has begun, its commit is
still to come) while a run goes by, with the slot placed exactly at the edge that ingest judges
by; no timing is involved beyond waiting for the database clock to pass a computed instant.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta

import psycopg
from litestar import Litestar
from psycopg.rows import dict_row

from control_plane.domain.agent_api.service import Q as AGENT_Q
from control_plane.domain.results.rollups import MARGIN_SECS, floor_minute
from tests.conftest import Persona
from tests.control_plane.results.test_rollups import connect, raw_uptime, run
from tests.monitoring_helpers import make_agent, make_target


async def _clock_passes(db_url: str, at: datetime) -> None:
    """Until the database clock (what a run's now() reads) is at or past ``at``."""
    async with await connect(db_url) as conn:
        while True:
            row = await (
                await conn.execute("SELECT clock_timestamp() >= %s AS ok", (at,))
            ).fetchone()
            if row and row["ok"]:
                return
            await conn.execute("SELECT pg_sleep(0.02)")


async def test_a_result_committed_after_a_run_began_is_rolled_up(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    agent = await make_agent(operator)
    target = await make_target(owner)
    tid = uuid.UUID(target["id"])
    assert (await run(db_url)).ran  # a watermark to start from

    # The ingest statement begins: its now() is fixed from here on.
    async with await psycopg.AsyncConnection.connect(db_url, row_factory=dict_row) as ingest:
        row = await (await ingest.execute("SELECT now() AS now")).fetchone()
        assert row is not None
        began: datetime = row["now"]
        # An interval that puts ingest's lateness edge (began - interval - margin) just before a
        # minute boundary, so the next run (a moment later) settles the minute that holds it.
        past = began - timedelta(seconds=MARGIN_SECS)
        boundary = floor_minute(past - timedelta(seconds=10))
        interval = math.ceil((past - boundary).total_seconds())
        edge = past - timedelta(seconds=interval)
        assert 10 <= interval <= 70 and edge < boundary
        async with await connect(db_url) as conn:
            await conn.execute(
                "UPDATE targets SET interval_secs = %s WHERE id = %s", (interval, tid)
            )
        # The slot at the edge of the minute the next run settles.
        slot = edge
        result = {
            "idx": 0,
            "target_id": str(tid),
            "scheduled_at": slot.isoformat(),
            "status": "up",
            "started_at": slot.isoformat(),
            "finished_at": (slot + timedelta(milliseconds=20)).isoformat(),
            "latency_ms": 20.0,
        }
        params = {
            "rows": json.dumps([result]),
            "region_id": "default",
            "agent_id": uuid.UUID(agent.id),
        }
        stored = await (await ingest.execute(AGENT_Q.ingest_results, params)).fetchone()
        assert stored is not None and stored["stored_idx"] == [0]

        # A run starts once the slot's minute is past the settling window; the write is still
        # uncommitted, so the run does not see it.
        await _clock_passes(db_url, boundary + timedelta(seconds=interval + MARGIN_SECS))
        assert (await run(db_url)).ran
        await ingest.commit()

    # The next run must still count it: in the rollup row and in /uptime over that minute.
    await run(db_url)
    minute = floor_minute(slot)
    raw = await raw_uptime(db_url, target["id"], minute, minute + timedelta(minutes=1))
    assert raw["up"] == 1
    async with await connect(db_url) as conn:
        rolled = await (
            await conn.execute(
                "SELECT total, up FROM result_rollups WHERE target_id = %s AND minute = %s",
                (tid, minute),
            )
        ).fetchone()
    assert rolled == {"total": 1, "up": 1}
    params_q = {"from": minute.isoformat(), "to": (minute + timedelta(minutes=1)).isoformat()}
    got = (await owner.get(f"/api/v1/targets/{tid}/uptime", params=params_q)).json()
    assert (got["total"], got["up"]) == (raw["total"], raw["up"]) == (1, 1)

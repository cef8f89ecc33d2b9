"""Row writes per steady check (issue 18): at most three on the hot path, counted exactly.

A steady check is an ``up`` of a region whose evaluation state is already a saturated ``up``
(its good run at the target's confirmations), with no open incident. Its writes: the schedule
row at lease, its result and the schedule row again at ingest. Its evaluation's watermarks ride
on that schedule row (``steady_to``, migration 0170) instead of a fourth write of
``region_states``; nothing is marked for evaluation.

The writes are counted by row-level triggers on every table of this test's own database (each
test gets a fresh clone): every INSERT, UPDATE and DELETE of any row, whatever the statement.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.db.sql import Queries
from control_plane.domain.incidents import engine
from control_plane.domain.incidents.engine import evaluate_batch
from tests.conftest import Persona
from tests.monitoring_helpers import AgentHandle, fetch, make_agent, make_target, result_for

N = 12

# Every table's row writes go to ``test_row_writes`` (a partition's under its parent's name).
COUNT_WRITES = """
CREATE TABLE test_row_writes (tbl text NOT NULL, op text NOT NULL, target_id text);
CREATE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    INSERT INTO test_row_writes VALUES (TG_ARGV[0], TG_OP, row ->> 'target_id');
    RETURN NULL;
END $$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND c.relname <> 'test_row_writes'
    LOOP
        EXECUTE format('CREATE TRIGGER test_count_write AFTER INSERT OR UPDATE OR DELETE ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION test_count_write(%L)',
                       t.relname, t.relname);
    END LOOP;
END $$;
"""


async def sql(db_url: str, query: str, params: dict[str, Any] | None = None) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def make_all_due(db_url: str, ids: list[str]) -> None:
    """Every target's slot due a second ago, each a fresh slot (later than any before)."""
    await sql(
        db_url,
        "UPDATE schedules SET next_due_at = date_trunc('milliseconds', now()) - interval '1 s',"
        " leased_by = NULL, lease_expires_at = NULL WHERE target_id = ANY(%(ids)s)",
        {"ids": [uuid.UUID(t) for t in ids]},
    )


async def round_of(agent: AgentHandle, db_url: str, ids: list[str], status: str = "up") -> str:
    """One lease call for the due slots of every target and one ingest call answering them all
    with ``status``; the slot of the first (all are the same instant)."""
    await make_all_due(db_url, ids)
    return await lease_and_answer(agent, ids, status)


async def lease_and_answer(agent: AgentHandle, ids: list[str], status: str = "up") -> str:
    """The agent's part of a round: one lease call and one ingest call; the slot."""
    leases = (await agent.lease(max_n=len(ids))).json()["leases"]
    assert sorted(x["target_id"] for x in leases) == sorted(ids)
    resp = await agent.ingest([result_for(x, status) for x in leases])
    assert resp.json() == {"accepted": len(ids), "duplicates": 0, "rejected": []}, resp.text
    slot: str = leases[0]["scheduled_at"]
    return slot


async def evaluate(db_url: str, ids: list[str]) -> None:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await evaluate_batch(conn, [uuid.UUID(t) for t in ids])


async def writes(db_url: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(table, op) counts since the last call: of the test's targets' rows, and of other rows."""
    rows = await sql(db_url, "DELETE FROM test_row_writes RETURNING tbl, op, target_id")
    per_target = Counter((r["tbl"], r["op"]) for r in rows if r["target_id"] is not None)
    other = Counter((r["tbl"], r["op"]) for r in rows if r["target_id"] is None)
    return per_target, other


async def effective_states(db_url: str, ids: list[str]) -> list[dict[str, Any]]:
    """The region states as the engine reads them (its own statement)."""
    q = Queries.beside(engine.__file__, "engine")
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(q.region_states, {"ids": [uuid.UUID(t) for t in ids]})
        return await cur.fetchall()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def steady_targets(
    owner: Persona, operator: Persona, db_url: str
) -> tuple[AgentHandle, list[str]]:
    """N targets (2 confirmations) whose region state is a saturated ``up``."""
    ids = [(await make_target(owner, interval=10, name=f"t{i}"))["id"] for i in range(N)]
    agent = await make_agent(operator)
    await round_of(agent, db_url, ids)  # nothing known yet: marked, evaluated
    await evaluate(db_url, ids)
    await round_of(agent, db_url, ids)  # the second good: folded into region_states
    rows = await sql(db_url, "SELECT consecutive_good, last_status FROM region_states")
    assert len(rows) == N and all(
        (r["consecutive_good"], r["last_status"]) == (2, "up") for r in rows
    )
    return agent, ids


async def test_a_steady_check_writes_three_rows(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent, ids = await steady_targets(owner, operator, db_url)
    await sql(db_url, COUNT_WRITES)
    for _ in range(2):  # the first steady round, and one that follows a steady round
        await make_all_due(db_url, ids)
        await writes(db_url)  # not the test's own setup write
        slot = await lease_and_answer(agent, ids)
        per_target, other = await writes(db_url)
        # Exactly: the lease's schedule update, the result, the ingest's schedule update.
        assert per_target == Counter({("schedules", "UPDATE"): 2 * N, ("results", "INSERT"): N}), (
            per_target
        )
        assert sum(per_target.values()) / N == 3
        # Per call, not per check, and at most once a second: the calls may mark the agent seen.
        assert set(other) <= {("agents", "UPDATE")} and other[("agents", "UPDATE")] <= 2, other
        # Nothing was marked; the engine reads the state as if it had folded the result itself.
        assert await sql(db_url, "SELECT 1 FROM evaluation_queue") == []
        for st in await effective_states(db_url, ids):
            assert st["evaluated_to"] == ts(slot) and st["last_reported_at"] == ts(slot)
            assert (st["consecutive_good"], st["consecutive_bad"]) == (2, 0)
            assert st["last_status"] == "up" and not st["failing"]


async def test_the_engine_goes_on_from_the_steady_watermark(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent, ids = await steady_targets(owner, operator, db_url)
    for _ in range(3):
        await round_of(agent, db_url, ids)
    # The engine finds nothing past the steady watermark: no result is folded twice.
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        outcomes = await evaluate_batch(conn, [uuid.UUID(t) for t in ids])
    assert {o.results for o in outcomes.values()} == {0}
    # A down is marked and evaluated from there: one bad result, the watermark at its slot.
    down = await round_of(agent, db_url, ids, "down")
    assert len(await sql(db_url, "SELECT 1 FROM evaluation_queue")) == N
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        outcomes = await evaluate_batch(conn, [uuid.UUID(t) for t in ids])
    assert {o.results for o in outcomes.values()} == {1}
    rows = await sql(
        db_url,
        "SELECT consecutive_good, consecutive_bad, evaluated_to, last_status FROM region_states",
    )
    assert all(
        (r["consecutive_good"], r["consecutive_bad"], r["evaluated_to"], r["last_status"])
        == (0, 1, ts(down), "down")
        for r in rows
    )


async def test_raised_confirmations_ignore_the_steady_watermark(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    """A good run below the new confirmations is counted from the results again (a steady
    watermark holds only for a saturated state)."""
    agent, ids = await steady_targets(owner, operator, db_url)
    for _ in range(2):
        last_slot = await round_of(agent, db_url, ids)
    await sql(db_url, "UPDATE targets SET alert_confirmations = 5")
    # The engine re-reads the two steady ups past region_states' own watermark: 2 + 2.
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        outcomes = await evaluate_batch(conn, [uuid.UUID(t) for t in ids])
    assert {o.results for o in outcomes.values()} == {2}
    rows = await sql(db_url, "SELECT consecutive_good, evaluated_to FROM region_states")
    assert all((r["consecutive_good"], r["evaluated_to"]) == (4, ts(last_slot)) for r in rows)


async def test_a_paused_target_keeps_its_last_check(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    """Pausing drops the schedule row; its steady watermark goes back into region_states first,
    so the paused target's last check (read from region_states) is the newest."""
    agent, ids = await steady_targets(owner, operator, db_url)
    slot = await round_of(agent, db_url, ids)
    resp = await owner.post(f"/api/v1/targets/{ids[0]}/pause")
    assert resp.status_code in (200, 204), resp.text
    rows = await fetch(
        db_url,
        "SELECT last_checked_at FROM target_status WHERE target_id = %s",
        uuid.UUID(ids[0]),
    )
    assert rows == [(ts(slot),)]
    rows = await fetch(
        db_url,
        "SELECT evaluated_to, last_reported_at FROM region_states WHERE target_id = %s",
        uuid.UUID(ids[0]),
    )
    assert rows == [(ts(slot), ts(slot))]

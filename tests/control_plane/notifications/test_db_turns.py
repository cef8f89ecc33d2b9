"""The worker's database turns (core/db_turns.py): its heavy statements run at most ``turns`` at
once; the delivery's claim and recording and the engine's chunks each take one."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from control_plane.core.db_turns import DbTurns
from control_plane.domain.incidents.engine import evaluate_batch
from control_plane.settings import SettingsError, settings_from_env
from tests.control_plane.notifications.conftest import Env


async def test_at_most_turns_at_once_and_zero_is_unbounded() -> None:
    for turns, expect in ((1, 1), (2, 2), (0, 0)):
        bound = DbTurns(turns)
        inside = 0
        most = 0

        async def statement(bound: DbTurns = bound) -> None:
            nonlocal inside, most
            async with bound.turn():
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.02)
                inside -= 1

        inside = most = 0
        await asyncio.gather(*(statement() for _ in range(5)))
        assert most == (expect or 5), turns
        assert bound.most == expect


def test_the_turns_are_a_deployment_setting() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://x/y",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    assert settings_from_env(env).database.worker_turns == 1
    assert settings_from_env({**env, "VIGIL_WORKER_DB_TURNS": "0"}).database.worker_turns == 0
    assert settings_from_env({**env, "VIGIL_WORKER_DB_TURNS": "3"}).database.worker_turns == 3
    for bad in ("-1", "many"):
        with pytest.raises(SettingsError, match="VIGIL_WORKER_DB_TURNS"):
            settings_from_env({**env, "VIGIL_WORKER_DB_TURNS": bad})


async def _stays_blocked(task: asyncio.Task[object], secs: float = 0.3) -> bool:
    done, _ = await asyncio.wait({task}, timeout=secs)
    return not done


async def test_delivery_claims_only_in_a_turn(env: Env) -> None:
    cid = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"})
    tid = await env.target([cid])
    iid = await env.open_incident(tid)
    env.res.db_turns = turns = DbTurns(1)
    async with turns.turn():
        run = asyncio.create_task(env.deliver())
        assert await _stays_blocked(run)
        # Not claimed while the worker's one turn is held elsewhere.
        (row,) = await env.sql(
            "SELECT lease_until, attempts FROM notifications WHERE incident_id = %s", iid
        )
        assert row == {"lease_until": None, "attempts": 0}
        assert env.rec.seen == []
    assert await run == 1
    assert len(env.rec.seen) == 1
    assert turns.most == 1


async def test_engine_chunk_waits_for_a_turn(env: Env) -> None:
    cid = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"})
    tid = uuid.UUID(await env.target([cid]))
    turns = DbTurns(1)
    async with env.res.db.connection() as conn:
        async with turns.turn():
            task = asyncio.create_task(evaluate_batch(conn, [tid], turns=turns))
            assert await _stays_blocked(task)
        outcomes = await task
    assert outcomes[tid].evaluated

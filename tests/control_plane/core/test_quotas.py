"""Plan quotas hold under concurrency: at the limit, of two parallel creates exactly one wins."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from tests.conftest import Persona, assert_error
from tests.e2e.processes import System

CHECK = {"type": "http", "url": "https://example.com"}


async def set_plan(db_url: str, org_id: Any, plan: str, **overrides: int) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE orgs SET plan_id = %s WHERE id = %s", (plan, org_id))
        if overrides:
            cols = ", ".join(overrides)
            marks = ", ".join(["%s"] * len(overrides))
            await conn.execute(
                f"INSERT INTO plan_overrides (org_id, {cols}) VALUES (%s, {marks})",
                (org_id, *overrides.values()),
            )


async def test_a_new_org_has_no_limits(owner: Persona) -> None:
    for i in range(8):  # past the free plan's 5
        resp = await owner.post("/api/v1/targets", json={"name": f"t{i}", "check": CHECK})
        assert resp.status_code == 201, resp.text


async def test_the_target_quota_is_enforced_with_its_details(owner: Persona, db_url: str) -> None:
    await set_plan(db_url, owner.org_id, "free", max_targets=2)
    for i in range(2):
        body = {"name": f"t{i}", "check": CHECK, "interval": 300}
        assert (await owner.post("/api/v1/targets", json=body)).status_code == 201
    resp = await owner.post("/api/v1/targets", json={"name": "x", "check": CHECK, "interval": 300})
    err = assert_error(resp, 422, "QUOTA_EXCEEDED")
    assert err["details"] == {"quota": "max_targets", "current": 2, "limit": 2, "plan": "free"}
    # The plan's interval floor applies too (free: 300 s).
    await set_plan(db_url, owner.org_id, "free")
    resp = await owner.post("/api/v1/targets", json={"name": "y", "check": CHECK, "interval": 60})
    assert_error(resp, 422, "MIN_CHECK_INTERVAL", "/interval")


@pytest.mark.e2e
async def test_two_parallel_creates_at_the_limit_one_wins(
    db_url: str, stack: Any, tmp_path: Any
) -> None:
    # A real server: the test client runs one request at a time, which proves nothing here.
    system = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await system.start_control_plane()
    try:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            org = await (await conn.execute("SELECT id FROM orgs")).fetchone()
        assert org is not None
        await set_plan(db_url, org[0], "pro", max_targets=1)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            # Hold the quota's lock so both requests queue on it, then let them race.
            await conn.execute("BEGIN")
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 4242))",
                (f"{org[0]}:max_targets:",),
            )
            tasks = [
                asyncio.create_task(
                    system.call(
                        "POST",
                        "/api/v1/targets",
                        {"name": f"r{i}", "check": CHECK},
                        ok=(201, 422),
                    )
                )
                for i in range(2)
            ]
            await asyncio.sleep(1.0)
            await conn.execute("COMMIT")
        answers = [await t for t in tasks]
        codes = sorted("error" in a for a in answers)
        assert codes == [False, True], answers
        listed = await system.api("GET", "/api/v1/targets")
        assert listed["total"] == 1
    finally:
        system.stop_all()

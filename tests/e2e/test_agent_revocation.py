"""An agent revoked while its lease request waits (a long-poll of up to 30 s) gets nothing.

Before, the waiting request went on polling with the identity it was authenticated with, and
handed the revoked agent the slots that fell due meanwhile, decrypted credentials included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.e2e.processes import System
from tests.monitoring_helpers import make_due
from tests.stack import OPERATOR_TOKEN

pytestmark = pytest.mark.e2e


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Any) -> AsyncIterator[System]:
    sysm = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await sysm.start_control_plane()
    try:
        yield sysm
    finally:
        sysm.stop_all()


async def test_an_agent_revoked_during_its_long_poll_gets_no_lease(
    system: System, db_url: str
) -> None:
    target = await system.api(
        "POST",
        "/api/v1/targets",
        {"name": "t", "check": {"type": "tcp", "host": "example.com", "port": 80}},
    )
    # The new target's slot is due at once: pushed an hour away, so the agent's long poll can
    # only be handed it after the revocation (when the test makes it due), and a lease before
    # the revocation cannot pass for one after it.
    await make_due(db_url, target["id"], seconds_ago=-3600)
    agent = await system.call(
        "POST", "/operator/agents", {"name": "doomed", "region": "default"}, OPERATOR_TOKEN
    )

    async def long_poll() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {agent['token']}"}
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{system.base_url}/api/agent/lease",
                json={"max": 10, "wait_ms": 8000},
                headers=headers,
            ) as resp,
        ):
            return resp.status, await resp.json()

    polling = asyncio.create_task(long_poll())
    await asyncio.sleep(1.0)  # authenticated, and waiting for work
    await system.call("POST", f"/operator/agents/{agent['id']}/revoke", None, OPERATOR_TOKEN)
    await make_due(db_url, target["id"])
    status, body = await asyncio.wait_for(polling, 10)
    assert status == 401, body
    assert body["error"]["code"] == "UNAUTHORIZED"
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        held = await (
            await conn.execute(
                "SELECT count(*) FROM schedules WHERE target_id = %s AND leased_by IS NOT NULL",
                (target["id"],),
            )
        ).fetchone()
    assert held is not None and held[0] == 0

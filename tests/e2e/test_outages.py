"""Faults heal themselves, one at a time, with real processes: a killed agent's long-poll leases
nothing, the API stops promptly on SIGTERM, ingest answers 503 at once while PostgreSQL is down,
and the worker outlives a Redis restart.

PostgreSQL and Redis are this test's own (started in its tmp dir), so stopping them touches no
other test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from control_plane.db.migrate import migrate
from control_plane.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.e2e.processes import BIN, System, free_port, wait_for
from tests.monitoring_helpers import make_due
from tests.stack import OPERATOR_TOKEN, ROOT

pytestmark = pytest.mark.e2e

TCP_CHECK = {"type": "tcp", "host": "127.0.0.1", "port": 9, "timeout": 1000}


@dataclass
class Servers:
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    db_url: str


@pytest.fixture
def servers() -> Any:
    # Under the project's .vigil (as the test stack): as root PostgreSQL runs as `postgres`,
    # which cannot reach pytest's private tmp dirs.
    base = Path(tempfile.mkdtemp(prefix="outage-", dir=ROOT / ".vigil"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(base / "pg", fast=True)
    redis = EmbeddedRedis(base / "redis", persist=False)
    admin = pg.start()
    redis.start()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE vigil")
    db_url = admin.rsplit("/", 1)[0] + "/vigil"
    migrate(db_url)
    try:
        yield Servers(pg, redis, db_url)
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def system(servers: Servers, tmp_path: Path) -> AsyncIterator[System]:
    sysm = System(db_url=servers.db_url, redis_url=servers.redis.url, workdir=tmp_path)
    await sysm.start_control_plane()
    try:
        yield sysm
    finally:
        sysm.stop_all()


async def new_agent(system: System, name: str) -> dict[str, Any]:
    agent: dict[str, Any] = await system.call(
        "POST", "/operator/agents", {"name": name, "region": "default"}, OPERATOR_TOKEN
    )
    return agent


async def lease(system: System, token: str, wait_ms: int = 0) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{system.base_url}/api/agent/lease",
            json={"max": 10, "wait_ms": wait_ms},
            headers=headers,
        ) as resp,
    ):
        return resp.status, await resp.json()


async def leased_by(db_url: str, target_id: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT leased_by FROM schedules WHERE target_id = %s AND leased_by IS NOT NULL",
                (target_id,),
            )
        ).fetchall()
    return [r[0] for r in rows]


async def test_a_killed_agents_long_poll_leases_nothing(system: System, servers: Servers) -> None:
    target = await system.api("POST", "/api/v1/targets", {"name": "t", "check": TCP_CHECK})
    dead, alive = await new_agent(system, "dead"), await new_agent(system, "alive")
    # The dead agent: a process waiting on a 20 s long-poll, killed -9 mid-wait.
    script = (
        "import asyncio, aiohttp, sys\n"
        "async def main():\n"
        "    async with aiohttp.ClientSession() as s:\n"
        "        await s.post(sys.argv[1] + '/api/agent/lease', json={'max': 10, 'wait_ms': 20000},"
        " headers={'Authorization': 'Bearer ' + sys.argv[2]}, timeout=aiohttp.ClientTimeout(60))\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, system.base_url, dead["token"]
    )
    try:
        await asyncio.sleep(1.5)  # authenticated and waiting
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 5)
        await asyncio.sleep(0.3)
        await make_due(servers.db_url, target["id"])
        await asyncio.sleep(1.5)  # several of the server's poll steps
        assert await leased_by(servers.db_url, target["id"]) == []
        # The living agent gets the slot at once (not after a dead lease expires).
        status, body = await lease(system, alive["token"])
        assert status == 200 and [x["target_id"] for x in body["leases"]] == [target["id"]]
    finally:
        if proc.returncode is None:
            proc.kill()


async def test_serve_stops_promptly_on_sigterm_with_long_polls_waiting(system: System) -> None:
    agent = await new_agent(system, "patient")
    polls = [asyncio.create_task(lease(system, agent["token"], wait_ms=25_000)) for _ in range(3)]
    await asyncio.sleep(1.0)
    api = system.procs["api"]
    started = time.monotonic()
    api.send_signal(signal.SIGTERM)
    await asyncio.to_thread(api.wait, 20)
    took = time.monotonic() - started
    assert took < 5, f"vigil serve took {took:.1f} s to stop"
    for poll in polls:
        status, body = await poll
        assert status == 200 and body["leases"] == []


async def test_ingest_answers_503_at_once_while_postgres_is_down(
    system: System, servers: Servers
) -> None:
    target = await system.api("POST", "/api/v1/targets", {"name": "t", "check": TCP_CHECK})
    agent = await new_agent(system, "a")
    await make_due(servers.db_url, target["id"])
    _, body = await lease(system, agent["token"])
    (held,) = body["leases"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    result = {
        "lease_id": held["lease_id"],
        "target_id": held["target_id"],
        "scheduled_at": held["scheduled_at"],
        "started_at": now,
        "finished_at": now,
        "status": "up",
    }
    headers = {"Authorization": f"Bearer {agent['token']}"}
    await asyncio.to_thread(servers.pg.stop)
    try:
        async with aiohttp.ClientSession() as s:
            started = time.monotonic()
            async with s.post(
                f"{system.base_url}/api/agent/ingest", json={"results": [result]}, headers=headers
            ) as resp:
                took = time.monotonic() - started
                assert resp.status == 503, await resp.text()
                err = (await resp.json())["error"]
                assert err["code"] == "DEPENDENCY_DOWN" and resp.headers["Retry-After"]
            assert took < 5, f"503 after {took:.1f} s"
    finally:
        await asyncio.to_thread(servers.pg.start)

    async def stored() -> bool:
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{system.base_url}/api/agent/ingest", json={"results": [result]}, headers=headers
            ) as resp,
        ):
            return resp.status == 200

    await wait_for(stored, 30, 0.5)


async def worker_metric(port: int) -> float | None:
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            text = await resp.text()
    except aiohttp.ClientError:
        return None
    for line in text.splitlines():
        if line.startswith("vigil_worker_redis_up "):
            return float(line.split()[1])
    return None


async def test_the_worker_outlives_a_redis_restart(system: System, servers: Servers) -> None:
    port = free_port()
    worker = system.spawn("worker", str(BIN / "vigil"), "worker", "--metrics-port", str(port))

    async def redis_up(value: float) -> bool:
        return await worker_metric(port) == value

    await wait_for(lambda: redis_up(1.0), 30, 0.3)
    await asyncio.to_thread(servers.redis.stop)
    await wait_for(lambda: redis_up(0.0), 30, 0.3)
    await asyncio.sleep(3)
    assert worker.poll() is None, "the worker exited when Redis went away"
    await asyncio.to_thread(servers.redis.start)  # the same port
    await wait_for(lambda: redis_up(1.0), 30, 0.3)
    # And it works again: a slot left behind is swept as missed by its cron.
    target = await system.api("POST", "/api/v1/targets", {"name": "t", "check": TCP_CHECK})
    await make_due(servers.db_url, target["id"], seconds_ago=200, on_grid=False)

    async def swept() -> bool:
        async with await psycopg.AsyncConnection.connect(servers.db_url) as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM results WHERE target_id = %s AND status = 'missed'",
                    (target["id"],),
                )
            ).fetchone()
        return bool(row and row[0])

    await wait_for(swept, 30, 0.5)
    assert worker.poll() is None
    os.kill(worker.pid, signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 15) == 0

"""End to end with real processes: control plane, worker and agents in two regions.

The probed target is a local HTTP server the test controls. It can fail for one region only
(agents name their region in their User-Agent), go down for everyone, and come back.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from aiohttp import web

from tests.e2e.processes import System, wait_for

pytestmark = pytest.mark.e2e


class FlakyTarget:
    """An HTTP target: healthy, failing for some regions, or slow, as the test says."""

    def __init__(self) -> None:
        self.failing_regions: set[str] = set()
        self.delay = 0.0
        self.hits: dict[str, int] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        ua = request.headers.get("User-Agent", "")
        region = ua.split("region=", 1)[1].rstrip(")") if "region=" in ua else "?"
        self.hits[region] = self.hits.get(region, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if region in self.failing_regions or "*" in self.failing_regions:
            return web.Response(status=500, text="broken")
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyTarget]:
    target = FlakyTarget()
    await target.start()
    try:
        yield target
    finally:
        await target.stop()


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Any) -> AsyncIterator[System]:
    sysm = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await sysm.start_control_plane()
    sysm.start_worker()
    try:
        yield sysm
    finally:
        sysm.stop_all()


async def open_incidents(system: System, target_id: str) -> list[dict[str, Any]]:
    resp = await system.api("GET", f"/api/v1/targets/{target_id}/incidents?ongoing_only=true")
    items: list[dict[str, Any]] = resp["items"]
    return items


async def all_incidents(system: System, target_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await system.api("GET", f"/api/v1/targets/{target_id}/incidents")
    )["items"]
    return items


async def test_region_policies_open_and_close_incidents(system: System, flaky: FlakyTarget) -> None:
    await system.start_agent("east")
    await system.start_agent("west")
    target = await system.api(
        "POST",
        "/api/v1/targets",
        {
            "name": "flaky",
            "check": {"type": "http", "url": flaky.url, "timeout": 2000},
            "interval": 10,
            "alert_confirmations": 1,
            "region_policy": "all",
        },
    )
    tid = target["id"]
    await system.api("PUT", f"/api/v1/targets/{tid}/regions", {"regions": ["east", "west"]})

    async def results_from(region: str, status: str) -> int:
        page = await system.api("GET", f"/api/v1/targets/{tid}/results?region={region}&limit=1000")
        return sum(1 for r in page["items"] if r["status"] == status)

    # Healthy from both regions first.
    await wait_for(lambda: _both(results_from("east", "up"), results_from("west", "up")), 40)

    # East alone sees the outage: under "all" that opens nothing.
    flaky.failing_regions = {"east"}
    await wait_for(lambda: _at_least(results_from("east", "down"), 2), 40)
    await system.settle()
    assert await all_incidents(system, tid) == []

    # Under "any" the same one-region outage opens an incident.
    await system.api("PATCH", f"/api/v1/targets/{tid}", {"region_policy": "any"})
    await wait_for(lambda: _nonempty(open_incidents(system, tid)), 40)
    (inc,) = await open_incidents(system, tid)
    assert inc["regions"] == ["east"]

    # Recovery closes it.
    flaky.failing_regions = set()
    await wait_for(lambda: _empty(open_incidents(system, tid)), 40)
    (closed,) = await all_incidents(system, tid)
    assert closed["id"] == inc["id"] and closed["ended_at"] is not None


async def test_target_down_for_everyone_and_back(system: System, flaky: FlakyTarget) -> None:
    await system.start_agent("default")
    target = await system.api(
        "POST",
        "/api/v1/targets",
        {
            "name": "down-and-back",
            "check": {"type": "http", "url": flaky.url, "timeout": 1000},
            "interval": 10,
            "alert_confirmations": 1,
        },
    )
    tid = target["id"]
    await wait_for(lambda: _at_least(_count(system, tid, "up"), 1), 40)
    await flaky.stop()  # connection refused from now on
    await wait_for(lambda: _nonempty(open_incidents(system, tid)), 40)
    (inc,) = await open_incidents(system, tid)
    assert inc["error_sample"]
    await flaky.start()  # same port
    await wait_for(lambda: _empty(open_incidents(system, tid)), 40)


async def test_killed_agent_slots_are_picked_up_by_another(
    system: System, flaky: FlakyTarget, db_url: str
) -> None:
    flaky.delay = 1.5  # checks are in flight long enough to kill the agent mid-check
    target = await system.api(
        "POST",
        "/api/v1/targets",
        {
            "name": "slow",
            "check": {"type": "http", "url": flaky.url, "timeout": 3000},
            "interval": 30,
            "alert_confirmations": 1,
        },
    )
    tid = uuid.UUID(target["id"])
    victim = await system.start_agent("default", name="victim")

    held: list[Any] = []

    async def held_by_victim() -> bool:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            row = await (
                await conn.execute(
                    "SELECT s.next_due_at FROM schedules s JOIN agents a ON a.id = s.leased_by"
                    " WHERE s.target_id = %s AND a.name = 'victim'"
                    " AND s.lease_expires_at > now()",
                    (tid,),
                )
            ).fetchone()
            if row:
                held.append(row[0])
            return row is not None

    await wait_for(held_by_victim, 45, step=0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    await system.start_agent("default", name="rescuer")

    async def results() -> list[tuple[Any, str, str]]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            rows = await (
                await conn.execute(
                    "SELECT r.scheduled_at, r.status, coalesce(a.name, '')"
                    " FROM results r LEFT JOIN agents a ON a.id = r.agent_id"
                    " WHERE r.target_id = %s ORDER BY r.scheduled_at",
                    (tid,),
                )
            ).fetchall()
            return [(r[0], r[1], r[2]) for r in rows]

    async def rescued() -> bool:
        return any(t == held[0] for t, _, _ in await results())

    await wait_for(rescued, 60)
    rows = await results()
    # The slot the killed agent held was leased again after expiry and ran by the other agent
    # (the victim died mid-check, it never reported it).
    (slot,) = [(status, who) for t, status, who in rows if t == held[0]]
    assert slot == ("up", "rescuer")
    # Every slot has exactly one result, on the 30 s grid with no gap.
    times = [t for t, _, _ in rows]
    assert len(times) == len(set(times))
    assert all((b - a).total_seconds() == 30 for a, b in itertools.pairwise(times))


async def _count(system: System, tid: str, status: str) -> int:
    page = await system.api("GET", f"/api/v1/targets/{tid}/results?limit=1000")
    return sum(1 for r in page["items"] if r["status"] == status)


async def _both(a: Any, b: Any) -> bool:
    first, second = await a, await b
    return bool(first) and bool(second)


async def _at_least(a: Any, n: int) -> bool:
    return bool(await a >= n)


async def _nonempty(a: Any) -> bool:
    return bool(await a)


async def _empty(a: Any) -> bool:
    return not await a

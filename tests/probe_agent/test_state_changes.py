"""A result that changes its target's status reaches ingest at once; steady results wait for the
batch age. Through a whole agent (leasing, the real runners, batcher, publisher and client)
against a local HTTP server standing in for the control plane's ``/api/agent``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from probe_agent.agent import Agent
from probe_agent.batcher import Batcher
from probe_agent.changes import GRACE_S, StatusMemory
from probe_agent.config import AgentConfig
from shared.checks import TcpCheck
from shared.protocol import (
    AgentStatus,
    CheckResult,
    IngestRequest,
    IngestResponse,
    Lease,
    LeaseRequest,
    LeaseResponse,
)
from tests.probe_agent.conftest import Listener
from tests.probe_agent.helpers import closed_port

GUARD_S = 10.0
BATCH_AGE_S = 1.0
# How soon a change must reach ingest: "at once", with room for a busy test machine. A steady
# result takes at least the batch age.
AT_ONCE_S = 0.15


class StandIn:
    """``/api/agent``: leases what the test queues (long-polling), records what is ingested with
    the time it arrived."""

    def __init__(self) -> None:
        self.to_lease: asyncio.Queue[Lease] = asyncio.Queue()
        self.leased_at: dict[str, float] = {}
        self.ingested: asyncio.Queue[tuple[float, CheckResult]] = asyncio.Queue()
        self.server: TestServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/agent/lease", self._lease)
        app.router.add_post("/api/agent/ingest", self._ingest)
        return app

    async def _lease(self, request: web.Request) -> web.Response:
        body = msgspec.json.decode(await request.read(), type=LeaseRequest)
        leases: list[Lease] = []
        try:
            async with asyncio.timeout(body.wait_ms / 1000):
                leases.append(await self.to_lease.get())
        except TimeoutError:
            pass
        for lease in leases:
            self.leased_at[lease.lease_id] = time.monotonic()
        answer = LeaseResponse(leases=leases, server_time=datetime.now(UTC))
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")

    async def _ingest(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = msgspec.json.decode(await request.read(), type=IngestRequest)
        for result in body.results:
            self.ingested.put_nowait((arrived, result))
        answer = IngestResponse(accepted=len(body.results), duplicates=0, rejected=[])
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    cp = StandIn()
    cp.server = TestServer(cp.app(), host="127.0.0.1")
    await cp.server.start_server()
    try:
        yield cp
    finally:
        await cp.server.close()


def lease_of(target_id: str, check: TcpCheck) -> Lease:
    now = datetime.now(UTC)
    return Lease(
        lease_id=f"lease-{uuid.uuid4().hex[:8]}",
        target_id=target_id,
        region="test-region",
        scheduled_at=now,
        expires_at=now + timedelta(minutes=1),
        interval_secs=60,
        check=check,
        org_id=str(uuid.uuid4()),
        allow_private=True,
    )


async def test_a_status_change_is_sent_at_once_and_steady_results_wait_for_the_batch_age(
    stand_in: StandIn, listener: Listener, tmp_path: Path
) -> None:
    assert stand_in.server is not None
    config = AgentConfig(
        control_plane=str(stand_in.server.make_url("")),
        token="sm_agent_test",
        spool_dir=tmp_path / "spool",
        batch_age_ms=int(BATCH_AGE_S * 1000),
        lease_wait_ms=2000,
    )
    agent = Agent(config)
    running = asyncio.create_task(agent.run())
    target = str(uuid.uuid4())
    up = TcpCheck(host="127.0.0.1", port=listener.port, timeout=1000)
    down = TcpCheck(host="127.0.0.1", port=closed_port(), timeout=1000)

    async def reported_after(check: TcpCheck, status: AgentStatus) -> float:
        """Seconds from the lease being handed out to its result reaching ingest."""
        lease = lease_of(target, check)
        stand_in.to_lease.put_nowait(lease)
        arrived, result = await asyncio.wait_for(stand_in.ingested.get(), GUARD_S)
        assert result.lease_id == lease.lease_id
        assert result.status == status, result
        return arrived - stand_in.leased_at[lease.lease_id]

    try:
        # The first result has nothing to differ from: it batches like any other.
        assert await reported_after(up, "up") >= BATCH_AGE_S * 0.9
        assert await reported_after(up, "up") >= BATCH_AGE_S * 0.9  # steady
        assert await reported_after(down, "down") < AT_ONCE_S  # up -> down: at once
        assert await reported_after(down, "down") >= BATCH_AGE_S * 0.9  # steady again
        assert await reported_after(up, "up") < AT_ONCE_S  # the recovery: at once
    finally:
        agent.request_stop()
        assert await asyncio.wait_for(running, GUARD_S) == 0


# --- the parts on their own ---------------------------------------------------------------------


def result_of(lease: Lease, status: AgentStatus, error_code: str | None = None) -> CheckResult:
    return CheckResult(
        lease_id=lease.lease_id,
        target_id=lease.target_id,
        scheduled_at=lease.scheduled_at,
        started_at=lease.scheduled_at,
        finished_at=lease.scheduled_at,
        status=status,
        error_code=error_code,
    )


def test_memory_sees_changes_but_not_throttled_results() -> None:
    memory = StatusMemory()
    check = TcpCheck(host="127.0.0.1", port=1)
    lease = lease_of("t1", check)
    memory.leased(lease)
    assert not memory.changed(result_of(lease, "up"))  # nothing to differ from yet
    assert not memory.changed(result_of(lease, "up"))
    assert not memory.changed(result_of(lease, "degraded", "THROTTLED"))  # did not run
    assert memory.changed(result_of(lease, "down"))
    assert not memory.changed(result_of(lease, "down"))
    assert memory.changed(result_of(lease, "up"))
    # A result of a target this agent never leased (or has forgotten) is no change.
    assert not memory.changed(result_of(lease_of("t2", check), "down"))


def test_memory_is_bounded_and_forgets_targets_no_longer_leased() -> None:
    now = [0.0]
    memory = StatusMemory(capacity=2, clock=lambda: now[0])
    check = TcpCheck(host="127.0.0.1", port=1)
    a, b, c = (lease_of(name, check) for name in ("a", "b", "c"))
    for lease in (a, b):
        memory.leased(lease)
        memory.changed(result_of(lease, "up"))
    memory.leased(c)  # over capacity: the least recently leased (a) goes
    assert len(memory) == 2
    memory.leased(a)
    assert not memory.changed(result_of(a, "down"))  # a was forgotten: no change to send
    # Leased every 60 s, b is kept; not leased for twice its interval and the grace, forgotten.
    now[0] += 2 * 60 + GRACE_S + 1
    memory.leased(b)
    assert not memory.changed(result_of(b, "down"))
    memory.leased(c)
    assert len(memory) == 2


async def test_an_urgent_result_flushes_what_waits_and_the_age_applies_again_after() -> None:
    batches: asyncio.Queue[list[str]] = asyncio.Queue()

    async def sink(batch: list[CheckResult]) -> None:
        await batches.put([r.lease_id for r in batch])

    batcher = Batcher(sink, max_size=100, max_age=3600)
    runner = asyncio.create_task(batcher.run())
    check = TcpCheck(host="127.0.0.1", port=1)
    steady, change, later = (lease_of("t", check) for _ in range(3))
    try:
        batcher.add(result_of(steady, "up"))
        batcher.add(result_of(change, "down"), urgent=True)
        got = await asyncio.wait_for(batches.get(), GUARD_S)
        assert got == [steady.lease_id, change.lease_id]
        batcher.add(result_of(later, "down"))
        await asyncio.sleep(0.05)
        assert batches.empty()  # an hour of batch age to go
        assert len(batcher) == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

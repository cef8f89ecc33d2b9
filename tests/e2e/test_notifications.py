"""End to end with real processes: a target goes down, the worker opens the incident and the
local receiver gets a signed webhook and a PagerDuty trigger; recovery brings one recovery
message and the resolve on the same dedup key. Then the worker is killed -9 while a delivery is
in flight, and the row is delivered after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.control_plane.notifications.receiver import Receiver, receiver
from tests.e2e.processes import System, wait_for
from tests.e2e.test_monitoring_loop import FlakyTarget, flaky

pytestmark = pytest.mark.e2e
__all__ = ["flaky"]
SECRET = "e2e-signing-secret-0123"


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Any, rec: Receiver) -> AsyncIterator[System]:
    sysm = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    sysm.env["VIGIL_NOTIFY_BASE_URLS"] = f"pagerduty={rec.url}"
    sysm.env["VIGIL_NOTIFY_TIMEOUT_SECS"] = "5"
    await sysm.start_control_plane()
    sysm.start_worker()
    try:
        yield sysm
    finally:
        sysm.stop_all()


def events(rec: Receiver, path: str) -> list[dict[str, Any]]:
    return [s.json() for s in rec.seen if s.path == path]


async def test_down_then_up_signed_webhook_and_pagerduty(
    system: System, flaky: FlakyTarget, rec: Receiver
) -> None:
    rec.answer(202)
    await system.start_agent("default")
    hook = await system.api(
        "POST",
        "/api/v1/notification-channels",
        {"name": "hook", "config": {"type": "webhook", "url": rec.url + "/hook", "secret": SECRET}},
    )
    pd = await system.api(
        "POST",
        "/api/v1/notification-channels",
        {"name": "pd", "config": {"type": "pagerduty", "routing_key": "P" * 32}},
    )
    target = await system.api(
        "POST",
        "/api/v1/targets",
        {
            "name": "flaky",
            "check": {"type": "http", "url": flaky.url, "timeout": 1000},
            "interval": 10,
            "alert_confirmations": 1,
            "alerts": [{"channel_id": hook["id"]}, {"channel_id": pd["id"]}],
        },
    )
    flaky.failing_regions = {"*"}

    async def got(path: str, n: int) -> bool:
        return len(events(rec, path)) >= n

    await wait_for(lambda: got("/hook", 1), 60)
    await wait_for(lambda: got("/v2/enqueue", 1), 30)
    (req,) = [s for s in rec.seen if s.path == "/hook"]
    ts = req.headers["X-Vigil-Timestamp"]
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Vigil-Signature"] == f"sha256={mac}"
    down = req.json()
    assert down["event"] == "monitor.down" and down["monitor"]["id"] == target["id"]

    flaky.failing_regions = set()
    await wait_for(lambda: got("/hook", 2), 60)
    await wait_for(lambda: got("/v2/enqueue", 2), 30)
    await asyncio.sleep(3)  # nothing more arrives
    hooks = events(rec, "/hook")
    assert [e["event"] for e in hooks] == ["monitor.down", "monitor.up"]
    trigger, resolve = events(rec, "/v2/enqueue")
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == down["incident"]["id"]
    items = (await system.api("GET", f"/api/v1/incidents/{down['incident']['id']}/notifications"))[
        "items"
    ]
    assert sorted((n["kind"], n["state"]) for n in items) == [
        ("open", "delivered"),
        ("open", "delivered"),
        ("recovery", "delivered"),
        ("recovery", "delivered"),
    ]


async def test_worker_killed_mid_delivery_row_delivered_after_restart(
    system: System, flaky: FlakyTarget, rec: Receiver, db_url: str
) -> None:
    import psycopg

    rec.delay = 30  # the first delivery hangs while the worker dies
    await system.start_agent("default")
    hook = await system.api(
        "POST",
        "/api/v1/notification-channels",
        {"name": "hook", "config": {"type": "webhook", "url": rec.url + "/hook"}},
    )
    await system.api(
        "POST",
        "/api/v1/targets",
        {
            "name": "flaky",
            "check": {"type": "http", "url": flaky.url, "timeout": 1000},
            "interval": 10,
            "alert_confirmations": 1,
            "alerts": [{"channel_id": hook["id"]}],
        },
    )
    flaky.failing_regions = {"*"}

    async def arrived() -> bool:
        return len(rec.seen) >= 1

    await wait_for(arrived, 60)
    system.procs["worker"].send_signal(signal.SIGKILL)
    system.procs["worker"].wait(10)
    rec.delay = 0
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        (state, attempts) = await (
            await conn.execute("SELECT state, attempts FROM notifications")
        ).fetchone() or ("?", 0)
        assert (state, attempts) == ("pending", 1)
        # The lease (60 s) runs out: made to have run out rather than waited for.
        await conn.execute("UPDATE notifications SET lease_until = now()")
    system.start_worker()

    async def delivered() -> bool:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT state FROM notifications")).fetchone()
            return row is not None and row[0] == "delivered"

    await wait_for(delivered, 60)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT outcome, status_code FROM notification_attempts ORDER BY at")
        ).fetchall()
    # The killed attempt left no record; the one after the restart is the delivery.
    assert [tuple(r) for r in rows] == [("delivered", 200)]
    assert len(rec.seen) == 2

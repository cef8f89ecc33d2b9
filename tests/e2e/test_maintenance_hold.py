"""End to end with real processes (API, worker, agent): a maintenance window covering an
outage holds the page and releases it at the window's end when the target is still down; a
recovery inside the window sends nothing, before or after its end. The window is ended by moving
its ``ends_at`` a few seconds ahead once the outage is held (rather than waiting out a fixed
window), so the test does not depend on how fast a loaded machine detects the outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.control_plane.notifications.receiver import Receiver, receiver
from tests.e2e.processes import System, wait_for
from tests.e2e.test_monitoring_loop import FlakyTarget, flaky

pytestmark = pytest.mark.e2e
__all__ = ["flaky"]


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Any) -> AsyncIterator[System]:
    sysm = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await sysm.start_control_plane()
    sysm.start_worker()
    try:
        yield sysm
    finally:
        sysm.stop_all()


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def held_outage(system: System, flaky: FlakyTarget, rec: Receiver) -> tuple[Any, Any, Any]:
    """A target with a webhook channel, up, then down inside an hour-long window covering it:
    returns (target, window, incident) once the incident is open, in maintenance, its page
    held."""
    await system.start_agent("default")
    hook = await system.api(
        "POST",
        "/api/v1/notification-channels",
        {"name": "hook", "config": {"type": "webhook", "url": rec.url + "/hook"}},
    )
    target = await system.api(
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
    now = datetime.now(UTC)
    window = await system.api(
        "POST",
        "/api/v1/maintenance",
        {
            "title": "planned",
            "starts_at": iso(now - timedelta(minutes=1)),
            "ends_at": iso(now + timedelta(hours=1)),
            "target_ids": [target["id"]],
        },
    )
    flaky.failing_regions = {"*"}
    path = f"/api/v1/targets/{target['id']}/incidents"

    async def opened() -> bool:
        return bool((await system.api("GET", path))["items"])

    await wait_for(opened, 90)
    (incident,) = (await system.api("GET", path))["items"]
    assert incident["in_maintenance"] is True
    notes = f"/api/v1/incidents/{incident['id']}/notifications"

    async def queued() -> bool:
        return bool((await system.api("GET", notes))["items"])

    await wait_for(queued, 30)
    await system.settle(3)  # several delivery runs pass: the page stays held
    (note,) = (await system.api("GET", notes))["items"]
    assert (note["kind"], note["state"], note["held"]) == ("open", "pending", True)
    assert rec.seen == []
    return target, window, incident


async def end_window(system: System, window: Any) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    await system.api("PATCH", f"/api/v1/maintenance/{window['id']}", {"ends_at": iso(soon)})


async def test_page_held_in_maintenance_goes_out_at_its_end_when_still_down(
    system: System, flaky: FlakyTarget, rec: Receiver
) -> None:
    rec.answer(200)
    _, window, incident = await held_outage(system, flaky, rec)
    await end_window(system, window)

    async def paged() -> bool:
        return any(s.path == "/hook" for s in rec.seen)

    await wait_for(paged, 60)
    (page,) = [s.json() for s in rec.seen]
    assert page["event"] == "monitor.down" and page["incident"]["id"] == incident["id"]
    items = (await system.api("GET", f"/api/v1/incidents/{incident['id']}/notifications"))["items"]
    assert [(n["kind"], n["state"]) for n in items] == [("open", "delivered")]
    flaky.failing_regions = set()


async def test_recovery_inside_the_window_sends_nothing(
    system: System, flaky: FlakyTarget, rec: Receiver
) -> None:
    _, window, incident = await held_outage(system, flaky, rec)
    flaky.failing_regions = set()
    path = f"/api/v1/incidents/{incident['id']}"

    async def recovered() -> bool:
        return (await system.api("GET", path))["ended_at"] is not None

    await wait_for(recovered, 90)
    await end_window(system, window)

    async def released() -> bool:
        return not (await system.api("GET", path))["in_maintenance"]

    await wait_for(released, 60)
    await asyncio.sleep(3)  # delivery runs after the window's end send nothing
    assert rec.seen == []
    items = (await system.api("GET", f"{path}/notifications"))["items"]
    assert {(n["kind"], n["state"]) for n in items} <= {
        ("open", "skipped"),
        ("recovery", "skipped"),
    }
    assert any(n["kind"] == "open" for n in items)

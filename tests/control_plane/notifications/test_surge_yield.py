"""Delivery yields to an evaluation surge (``incidents/surge.py``): while the worker's
evaluation slots say a mass outage's ingest burst is on, no delivery run sends anything; once
it is over, the next run delivers every row once."""

from __future__ import annotations

from control_plane.domain.notifications.jobs import Deliverer
from tests.control_plane.notifications.conftest import Env


async def test_no_delivery_while_surging_then_every_row_once(env: Env) -> None:
    hook = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"})
    incidents = [
        await env.open_incident(await env.target([hook], name=f"site-{i}")) for i in range(3)
    ]
    surging = [True]
    d = Deliverer(env.res, lambda: surging[0])
    try:
        assert await d.run_once() == 0
        assert env.rec.seen == []
        pending = await env.sql("SELECT count(*) AS n FROM notifications WHERE state = 'pending'")
        assert pending == [{"n": 3}]
        surging[0] = False
        assert await d.run_once() == 3
    finally:
        await d.close()
    assert sorted(s.json()["incident"]["id"] for s in env.rec.seen) == sorted(incidents)
    assert await env.deliver() == 0  # nothing twice

"""GET /api/v1/events/stream: incident events as Server-Sent Events, fanned out through Redis.

The stream is read from a replica served on a real port (uvicorn, in this process); the changes
are made through another app instance (the test client's) and the worker's evaluation job, so
the events cross replicas through Redis as they would in production.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar
from redis.asyncio import Redis

from control_plane.domain.events.stream import publish
from tests.conftest import Persona, assert_error
from tests.control_plane.incidents.test_lifecycle import one_region_target
from tests.control_plane.ondemand.test_on_demand import GUARD_S, served

__all__ = ["served"]


class Stream:
    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines

    async def next_event(self) -> dict[str, Any]:
        """The next event (skipping comments), within the guard time."""

        async def read() -> dict[str, Any]:
            fields: dict[str, str] = {}
            async for line in self.lines:
                if line == "":
                    if "data" in fields:
                        event: dict[str, Any] = json.loads(fields["data"])
                        assert fields["event"] == event["type"] and fields["id"] == event["id"]
                        return event
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                key, _, value = line.partition(":")
                fields[key] = value.lstrip(" ")
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), GUARD_S)


@asynccontextmanager
async def stream(
    base: str, token_headers: dict[str, str], query: str = ""
) -> AsyncIterator[Stream]:
    async with httpx.AsyncClient(base_url=base, timeout=GUARD_S) as http:
        async with http.stream(
            "GET", f"/api/v1/events/stream{query}", headers=token_headers
        ) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.aiter_lines()

            async def subscribed() -> None:
                async for line in lines:
                    if line.startswith(": subscribed"):
                        return

            await asyncio.wait_for(subscribed(), GUARD_S)
            yield Stream(lines)


INCIDENT_TYPES = "incident.opened,incident.acknowledged,incident.updated,incident.resolved"


async def test_incident_events_reach_a_client_of_another_replica(
    served: str, owner: Persona, outsider: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    async with (
        stream(served, owner.headers, f"?types={INCIDENT_TYPES}") as mine,
        stream(served, outsider.headers) as theirs,
        stream(served, owner.headers, "?types=incident.resolved") as resolved_only,
        stream(served, owner.headers) as everything,
    ):
        await probe.round({agent: "down"})
        await probe.round({agent: "down"})
        # The default is every type: the target's status change, then the incident.
        status = await everything.next_event()
        assert status["type"] == "monitor.status" and status["data"]["status"] == "down"
        assert (await everything.next_event())["type"] == "incident.opened"
        opened = await mine.next_event()
        assert opened["type"] == "incident.opened"
        assert opened["data"]["target_id"] == target["id"]
        incident_id = opened["data"]["id"]

        resp = await owner.post(
            f"/api/v1/incidents/{incident_id}/acknowledge", json={"note": "on it"}
        )
        assert resp.status_code == 200, resp.text
        acked = await mine.next_event()
        assert acked["type"] == "incident.acknowledged"
        assert acked["data"]["acknowledge_note"] == "on it"

        resp = await owner.post(
            f"/api/v1/incidents/{incident_id}/updates",
            json={"phase": "identified", "message": "found it"},
        )
        assert resp.status_code == 201, resp.text
        updated = await mine.next_event()
        assert updated["type"] == "incident.updated"
        assert updated["data"]["updates"][0]["message"] == "found it"

        resp = await owner.post(f"/api/v1/incidents/{incident_id}/resolve")
        assert resp.status_code == 200, resp.text
        resolved = await mine.next_event()
        assert resolved["type"] == "incident.resolved" and resolved["data"]["id"] == incident_id
        assert len({opened["id"], acked["id"], updated["id"], resolved["id"]}) == 4

        # The filtered client saw only the resolve.
        only = await resolved_only.next_event()
        assert only["id"] == resolved["id"]

        # Another org's client saw none of it: its first event is its own.
        settings = app.state.resources.settings
        async with Redis.from_url(settings.redis.url) as redis:
            await publish(redis, settings.redis, outsider.org_id, "incident.updated", {})
        own = await theirs.next_event()
        assert own["org_id"] == str(outsider.org_id) and own["data"] == {}


async def test_stream_bad_input_and_auth(served: str, owner: Persona) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=GUARD_S) as http:
        assert_error(await http.get("/api/v1/events/stream"), 401, "UNAUTHORIZED")
        assert_error(
            await http.get("/api/v1/events/stream?types=monitor.exploded", headers=owner.headers),
            400,
            "INVALID_QUERY_PARAM",
        )

"""GET /api/ws: two API replicas on real ports each serve a WebSocket client, and both see the
same incident event, made through a third app instance and the evaluation job (fan-out through
Redis)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
from litestar import Litestar
from redis.asyncio import Redis

from control_plane.app import create_app
from control_plane.domain.events.stream import publish
from control_plane.settings import Settings
from tests.conftest import Persona
from tests.control_plane.incidents.test_lifecycle import one_region_target

GUARD_S = 30.0


@asynccontextmanager
async def replica(settings: Settings) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + GUARD_S
    while not server.started:
        assert not task.done(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}/api/ws"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, GUARD_S)


def token_of(persona: Persona) -> str:
    return persona.headers["Authorization"].removeprefix("Bearer ")


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), GUARD_S)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def test_two_replicas_each_serve_a_client_that_sees_the_same_event(
    settings: Settings, owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    async with (
        replica(settings) as first,
        replica(settings) as second,
        aiohttp.ClientSession() as http,
    ):
        clients = []
        for url, how in ((first, "message"), (second, "header")):
            if how == "header":
                ws = await http.ws_connect(url, headers=owner.headers)
                await ws.send_json({"subscribe": ["incident.updates"]})
            else:
                ws = await http.ws_connect(url)
                await ws.send_json({"auth": token_of(owner), "subscribe": ["incident.updates"]})
            assert await receive(ws) == {"type": "subscribed", "subscribe": ["incident.updates"]}
            clients.append(ws)

        await probe.round({agent: "down"})
        await probe.round({agent: "down"})
        opened = [await receive(ws) for ws in clients]
        assert opened[0] == opened[1]
        assert opened[0]["type"] == "incident.opened"
        assert opened[0]["data"]["target_id"] == target["id"]
        incident_id = opened[0]["data"]["id"]

        resp = await owner.post(f"/api/v1/incidents/{incident_id}/acknowledge")
        assert resp.status_code == 200, resp.text
        acked = [await receive(ws) for ws in clients]
        assert acked[0] == acked[1] and acked[0]["type"] == "incident.acknowledged"
        for ws in clients:
            await ws.close()


async def test_monitor_status_sends_each_change_of_a_targets_status(
    settings: Settings, owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    """Through the real socket: the worker's evaluation publishes a ``monitor.status`` event when
    a target's current status changes (unknown -> up -> down -> up), and nothing when it stays
    (the incident opening on a second failure, a first good result while it is open); a
    ``monitor.status`` client gets no incident events."""
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    async with (
        replica(settings) as url,
        aiohttp.ClientSession() as http,
        Redis.from_url(settings.redis.url) as redis,
    ):
        ws = await http.ws_connect(url)
        await ws.send_json({"auth": token_of(owner), "subscribe": ["monitor.status"]})
        assert (await receive(ws))["type"] == "subscribed"
        for status in ("up", "down", "down", "up", "up"):
            await probe.round({agent: status})
        # A marker after the rounds: whatever came before it is everything they published.
        await publish(redis, settings.redis, owner.org_id, "monitor.status", {"marker": True})
        seen = []
        while True:
            event = await receive(ws)
            if event["data"].get("marker"):
                break
            seen.append(event)
        assert [e["type"] for e in seen] == ["monitor.status"] * 3
        assert [(e["data"]["previous_status"], e["data"]["status"]) for e in seen] == [
            ("unknown", "up"),
            ("up", "down"),
            ("down", "up"),
        ]
        assert {e["data"]["target_id"] for e in seen} == {target["id"]}
        assert all(e["data"]["checked_at"] for e in seen)
        assert seen[2]["data"]["incident_id"] is not None  # the recovery closed the incident
        await ws.close()


async def test_bad_hello_is_refused(settings: Settings, owner: Persona) -> None:
    async with replica(settings) as url, aiohttp.ClientSession() as http:
        cases: list[tuple[Any, str]] = [
            ({"auth": "vgl_nope", "subscribe": ["incident.updates"]}, "UNAUTHORIZED"),
            ({"subscribe": ["incident.updates"]}, "UNAUTHORIZED"),
            ({"auth": token_of(owner), "subscribe": ["monitor.exploded"]}, "UNKNOWN_TOPIC"),
            ({"auth": token_of(owner), "subscribe": ["monitor.statuses"]}, "UNKNOWN_TOPIC"),
            ({"auth": token_of(owner), "subscribe": []}, "UNKNOWN_TOPIC"),
            ({"auth": token_of(owner), "subscribe": "incident.updates"}, "INVALID_MESSAGE"),
            ("not json", "INVALID_MESSAGE"),
        ]
        for hello, code in cases:
            ws = await http.ws_connect(url)
            if isinstance(hello, str):
                await ws.send_str(hello)
            else:
                await ws.send_json(hello)
            err = await receive(ws)
            assert err["type"] == "error" and err["code"] == code, (hello, err)
            closing = await asyncio.wait_for(ws.receive(), GUARD_S)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008
            await ws.close()


async def test_a_client_that_does_not_keep_up_is_dropped(
    settings: Settings, owner: Persona
) -> None:
    """Far more events than the client's queue and the socket buffers hold, while it reads
    nothing: the server closes it with 1013 instead of buffering without bound."""
    published = 1500
    async with (
        replica(settings) as url,
        aiohttp.ClientSession() as http,
        Redis.from_url(settings.redis.url) as redis,
    ):
        ws = await http.ws_connect(url)
        await ws.send_json({"auth": token_of(owner), "subscribe": ["incident.updates"]})
        assert (await receive(ws))["type"] == "subscribed"
        pad = "x" * 40_000
        for n in range(published):
            await publish(
                redis, settings.redis, owner.org_id, "incident.updated", {"n": n, "pad": pad}
            )
        received = 0
        while True:
            msg = await asyncio.wait_for(ws.receive(), GUARD_S)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            received += 1
        assert ws.close_code == 1013
        assert received < published
        await ws.close()

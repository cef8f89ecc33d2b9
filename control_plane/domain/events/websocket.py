"""GET /api/ws: the live stream over WebSocket.

The client opens the socket and sends one JSON message first:
``{"auth": "<API token>", "subscribe": ["incident.updates"]}`` (an ``Authorization: Bearer``
header on the upgrade request works too, then ``auth`` may be left out). The server answers
``{"type": "subscribed", "subscribe": [...]}`` and then sends each event of the org as one JSON
text message (the same event as the SSE stream: ``id``, ``type``, ``org_id``, ``occurred_at``,
``data``). Topics: ``monitor.status`` (a target's current status changed, from the worker's
evaluation of its results) and ``incident.updates`` (every ``incident.*`` event).

Events come through Redis (one channel per org, one subscription per process: ``hub.py``), so
any replica serves any client. Each client has a bounded queue: a client that falls
``MAX_PENDING`` events behind is disconnected (close code 1013) rather than buffered without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from control_plane.core.auth import Q as AUTH_Q
from control_plane.core.auth import resources
from control_plane.core.permissions import allows
from control_plane.security import tokens

from .hub import hub_of

TOPICS = {"monitor.status": "monitor.status", "incident.updates": "incident."}
AUTH_TIMEOUT_S = 10.0
# Close codes: policy violation (bad auth or message), server error (the subscription failed),
# try again later (too slow).
POLICY = 1008
UNAVAILABLE = 1011
TOO_SLOW = 1013


class Hello(msgspec.Struct, forbid_unknown_fields=True):
    subscribe: list[str]
    auth: str | None = None


async def _org_of(socket: WebSocket[Any, Any, Any], token: str) -> Any:
    """The org whose live API token this is, if it may read incidents; else None."""
    prefix = tokens.lookup_prefix(token, tokens.API_TOKEN_PREFIX)
    if prefix is None:
        return None
    res = resources(socket)
    async with res.db.connection() as conn:
        row = await (await conn.execute(AUTH_Q.api_token_by_prefix, {"prefix": prefix})).fetchone()
    if row is None or not tokens.verify(res.settings.security.token_key, token, row["hash"]):
        return None
    held = None if row["permissions"] is None else frozenset(row["permissions"])
    if not allows(held, "incidents:read"):
        return None
    return row["org_id"]


async def _refuse(socket: WebSocket[Any, Any, Any], code: str, message: str) -> None:
    await socket.send_json({"type": "error", "code": code, "message": message})
    await socket.close(code=POLICY, reason=code)


@websocket("/api/ws")
async def live_stream(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    try:
        raw = await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT_S)
        hello = msgspec.json.decode(raw, type=Hello)
    except (TimeoutError, msgspec.DecodeError, msgspec.ValidationError):
        await _refuse(
            socket,
            "INVALID_MESSAGE",
            'send {"auth": "<API token>", "subscribe": ["incident.updates"]} first',
        )
        return
    except WebSocketDisconnect:
        return
    header = socket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = hello.auth or (value.strip() if scheme.lower() == "bearer" else "")
    org_id = await _org_of(socket, token) if token else None
    if org_id is None:
        await _refuse(socket, "UNAUTHORIZED", "missing or invalid API token")
        return
    unknown = [t for t in hello.subscribe if t not in TOPICS]
    if unknown or not hello.subscribe:
        await _refuse(
            socket,
            "UNKNOWN_TOPIC",
            f"topics: {', '.join(TOPICS)} (got {', '.join(unknown) or 'none'})",
        )
        return
    prefixes = tuple(TOPICS[t] for t in hello.subscribe)
    hub = hub_of(socket.app)
    sub = await hub.join(org_id, prefixes)

    async def watch_close() -> None:
        # Anything the client sends after the hello is ignored; a close ends the stream.
        while True:
            await socket.receive_data(mode="text")

    watcher = asyncio.create_task(watch_close())
    # One task waits for the end for the whole stream; one getter per wake-up, and whatever
    # queued meanwhile is sent without another (1,000 clients of a process wake at once).
    ended = asyncio.create_task(sub.done.wait())
    getter: asyncio.Task[bytes] | None = None
    try:
        await socket.send_json({"type": "subscribed", "subscribe": list(hello.subscribe)})
        while True:
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait(
                [getter, ended, watcher], return_when=asyncio.FIRST_COMPLETED
            )
            if sub.done.is_set():
                # Behind by MAX_PENDING (dropped now, its backlog with it), or the subscription
                # failed (the client reconnects).
                if sub.overflowed:
                    await socket.close(code=TOO_SLOW, reason="too slow: events dropped")
                else:
                    await socket.close(code=UNAVAILABLE, reason="stream unavailable, reconnect")
                return
            if getter not in done:
                return
            await socket.send_text(getter.result().decode())
            while not sub.queue.empty() and not sub.done.is_set():
                await socket.send_text(sub.queue.get_nowait().decode())
    except WebSocketDisconnect:
        return
    finally:
        for task in (getter, ended, watcher):
            if task is not None:
                task.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        hub.leave(sub)

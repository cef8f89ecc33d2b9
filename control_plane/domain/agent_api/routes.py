"""/api/agent: lease and ingest, authenticated by the agent token (region comes from it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from control_plane.core.service import provide
from control_plane.core.text import JSON_NUL, without_nul
from shared.protocol import (
    IngestRequest,
    IngestResponse,
    LeaseRequest,
    LeaseResponse,
    ReleaseRequest,
    ReleaseResponse,
)

from .service import AgentProtocol


@contextlib.asynccontextmanager
async def watch_disconnect(request: Request[Any, Any, Any]) -> AsyncIterator[asyncio.Event]:
    """An event set when the client disconnects. The body is read already, so the next ASGI
    message the server sends is ``http.disconnect`` (uvicorn sends it when the socket closes)."""
    gone = asyncio.Event()

    async def listen() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    task = asyncio.create_task(listen())
    try:
        yield gone
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class AgentController(Controller):
    path = "/"
    tags = ["agent"]
    dependencies = {"protocol": provide(AgentProtocol)}

    @post("/lease", operation_id="agentLease", status_code=HTTP_200_OK)
    async def lease(
        self,
        request: Request[Any, Any, Any],
        protocol: NamedDependency[AgentProtocol],
        data: JSONBody[LeaseRequest],
    ) -> LeaseResponse:
        """Hand this agent up to ``max`` due slots of its region, long-polling ``wait_ms``. A
        request whose client went away (a killed agent) gets nothing leased to it."""
        async with watch_disconnect(request) as gone:
            return await protocol.lease(data, gone)

    @post("/release", operation_id="agentRelease", status_code=HTTP_200_OK)
    async def release(
        self, protocol: NamedDependency[AgentProtocol], data: JSONBody[ReleaseRequest]
    ) -> ReleaseResponse:
        """Give back leases this agent has not started (it is stopping), so another agent of
        the region takes their slots now instead of after the leases expire."""
        return await protocol.release(data)

    @post("/ingest", operation_id="agentIngest", status_code=HTTP_200_OK)
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        protocol: NamedDependency[AgentProtocol],
        data: JSONBody[IngestRequest],
    ) -> IngestResponse:
        """Store a batch of results once per slot; bad rows are rejected one by one."""
        # Decoded once, by Litestar: agents are our own software, and unknown fields are still
        # refused (the wire types forbid them). Ingest is the hottest path of the system.
        body = await request.body()
        if JSON_NUL in body:  # rare: only then is the batch walked
            data = msgspec.convert(without_nul(msgspec.to_builtins(data)), IngestRequest)
        return await protocol.ingest(data, body_bytes=len(body))

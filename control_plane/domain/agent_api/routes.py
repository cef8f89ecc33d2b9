"""/api/agent: lease and ingest, authenticated by the agent token (region comes from it)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from control_plane.core.service import provide
from control_plane.core.text import JSON_NUL, without_nul
from shared.protocol import IngestRequest, IngestResponse, LeaseRequest, LeaseResponse

from .service import AgentProtocol


class AgentController(Controller):
    path = "/"
    tags = ["agent"]
    dependencies = {"protocol": provide(AgentProtocol)}

    @post("/lease", operation_id="agentLease", status_code=HTTP_200_OK)
    async def lease(
        self, protocol: NamedDependency[AgentProtocol], data: JSONBody[LeaseRequest]
    ) -> LeaseResponse:
        """Hand this agent up to ``max`` due slots of its region, long-polling ``wait_ms``."""
        return await protocol.lease(data)

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

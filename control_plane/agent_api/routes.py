"""/api/agent: lease and ingest, authenticated by the agent token (region comes from it)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from control_plane.agent_api.service import AgentProtocol
from control_plane.auth import AgentContext, resources
from control_plane.text import JSON_NUL, without_nul
from shared.protocol import IngestRequest, IngestResponse, LeaseRequest, LeaseResponse


class AgentController(Controller):
    path = "/"
    tags = ["agent"]

    @post("/lease", operation_id="agentLease", status_code=HTTP_200_OK)
    async def lease(
        self,
        request: Request[Any, Any, Any],
        agent: NamedDependency[AgentContext],
        data: JSONBody[LeaseRequest],
    ) -> LeaseResponse:
        """Hand this agent up to ``max`` due slots of its region, long-polling ``wait_ms``."""
        return await AgentProtocol(resources(request), agent, request.app.state.monitoring).lease(
            data
        )

    @post("/ingest", operation_id="agentIngest", status_code=HTTP_200_OK)
    async def ingest(
        self,
        request: Request[Any, Any, Any],
        agent: NamedDependency[AgentContext],
        data: JSONBody[IngestRequest],
    ) -> IngestResponse:
        """Store a batch of results once per slot; bad rows are rejected one by one."""
        # Decoded once, by Litestar: agents are our own software, and unknown fields are still
        # refused (the wire types forbid them). Ingest is the hottest path of the system.
        if JSON_NUL in await request.body():  # rare: only then is the batch walked
            data = msgspec.convert(without_nul(msgspec.to_builtins(data)), IngestRequest)
        return await AgentProtocol(resources(request), agent, request.app.state.monitoring).ingest(
            data
        )

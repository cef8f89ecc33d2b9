"""/operator/agents: register probe agents, hand out their token once, revoke and remove them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from psycopg import AsyncConnection

from control_plane.auth import resources
from control_plane.pagination import Page, page_params
from control_plane.requests import path_uuid, strict_body

from .schemas import Agent, AgentCreate, AgentUpdate, NewAgent
from .service import AgentService, agent_not_found

LIST_DEFAULT, LIST_CAP = 50, 1000


def _service(request: Request[Any, Any, Any], conn: AsyncConnection[Any]) -> AgentService:
    return AgentService(conn, resources(request).settings.security.token_key)


class OperatorAgentController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/agents"
    tags = ["operator"]

    @post("/", operation_id="operatorCreateAgent", status_code=HTTP_201_CREATED)
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[AgentCreate]
    ) -> Response[NewAgent]:
        """Register an agent of a region. The response carries its ``sm_agent_…`` token: it is
        shown this once and cannot be read back."""
        body = await strict_body(request, AgentCreate)
        async with resources(request).db.connection() as conn:
            agent = await _service(request, conn).create(body)
        return Response(
            agent,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/operator/agents/{agent.id}"},
        )

    @get("/", operation_id="operatorListAgents")
    async def list_agents(
        self,
        request: Request[Any, Any, Any],
        region: str | None = Parameter(default=None, description="only agents of this region"),
        limit: int | None = Parameter(default=None, description="page size (default 50, max 1000)"),
        offset: int | None = Parameter(default=None),
    ) -> Page[Agent]:
        """Every agent, revoked ones included, oldest first."""
        lim, off = page_params(limit, offset, LIST_DEFAULT, LIST_CAP)
        async with resources(request).db.connection() as conn:
            items, total = await _service(request, conn).list_page(
                limit=lim, offset=off, region=region
            )
        return Page(items=items, total=total, limit=lim, offset=off)

    @get("/{agent_id:str}", operation_id="operatorGetAgent")
    async def get_agent(self, request: Request[Any, Any, Any], agent_id: FromPath[str]) -> Agent:
        """One agent, with when it was last seen."""
        aid = path_uuid(agent_id, agent_not_found())
        async with resources(request).db.connection() as conn:
            return await _service(request, conn).get(aid)

    @patch("/{agent_id:str}", operation_id="operatorUpdateAgent")
    async def update(
        self,
        request: Request[Any, Any, Any],
        agent_id: FromPath[str],
        data: JSONBody[AgentUpdate],
    ) -> Agent:
        """Rename an agent."""
        aid = path_uuid(agent_id, agent_not_found())
        body = await strict_body(request, AgentUpdate)
        async with resources(request).db.connection() as conn:
            return await _service(request, conn).update(aid, body)

    @delete("/{agent_id:str}", operation_id="operatorDeleteAgent", status_code=HTTP_204_NO_CONTENT)
    async def delete_agent(self, request: Request[Any, Any, Any], agent_id: FromPath[str]) -> None:
        """Remove an agent for good; its token stops working at once."""
        aid = path_uuid(agent_id, agent_not_found())
        async with resources(request).db.connection() as conn:
            await _service(request, conn).delete(aid)

    @post("/{agent_id:str}/revoke", operation_id="operatorRevokeAgent", status_code=HTTP_200_OK)
    async def revoke(self, request: Request[Any, Any, Any], agent_id: FromPath[str]) -> Agent:
        """Revoke an agent's token at once; the agent stays listed with its ``revoked_at``."""
        aid = path_uuid(agent_id, agent_not_found())
        async with resources(request).db.connection() as conn:
            return await _service(request, conn).revoke(aid)

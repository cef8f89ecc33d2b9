"""/operator/agents: register probe agents, hand out their token once, revoke and remove them."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .schemas import Agent, AgentCreate, AgentUpdate, NewAgent
from .service import AgentService, agent_not_found

LIST = PageSize(default=50, cap=1000)


class OperatorAgentController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/agents"
    tags = ["operator"]
    dependencies = {"agents": provide(AgentService)}

    @post(
        "/",
        operation_id="operatorCreateAgent",
        status_code=HTTP_201_CREATED,
        responses=errors(s422="[UNKNOWN_REGION] no region by that id"),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        agents: NamedDependency[AgentService],
        data: JSONBody[AgentCreate],
    ) -> Response[NewAgent]:
        """Register an agent of a region. The response carries its ``sm_agent_…`` token: it is
        shown this once and cannot be read back."""
        body = await strict_body(request, AgentCreate)
        agent = await agents.create(body)
        return Response(
            agent,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/operator/agents/{agent.id}"},
        )

    @get("/", operation_id="operatorListAgents")
    async def list_agents(
        self,
        agents: NamedDependency[AgentService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        region: str | None = Parameter(
            default=None,
            description="only agents of this region (a region id)",
            pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        ),
    ) -> Page[Agent]:
        """Every agent, revoked ones included, oldest first."""
        paging = LIST.paging(limit, offset)
        items, total = await agents.list_page(
            limit=paging.limit, offset=paging.offset, region=region
        )
        return paging.page(items, total)

    @get("/{agent_id:str}", operation_id="operatorGetAgent")
    async def get_agent(
        self, agents: NamedDependency[AgentService], agent_id: FromPath[str]
    ) -> Agent:
        """One agent, with when it was last seen."""
        aid = path_uuid(agent_id, agent_not_found())
        return await agents.get(aid)

    @patch(
        "/{agent_id:str}",
        operation_id="operatorUpdateAgent",
        responses=errors(s422="[UNKNOWN_REGION] no region by that id"),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        agents: NamedDependency[AgentService],
        agent_id: FromPath[str],
        data: JSONBody[AgentUpdate],
    ) -> Agent:
        """Rename an agent."""
        aid = path_uuid(agent_id, agent_not_found())
        body = await strict_body(request, AgentUpdate)
        return await agents.update(aid, body)

    @delete("/{agent_id:str}", operation_id="operatorDeleteAgent", status_code=HTTP_204_NO_CONTENT)
    async def delete_agent(
        self, agents: NamedDependency[AgentService], agent_id: FromPath[str]
    ) -> None:
        """Remove an agent for good; its token stops working at once."""
        aid = path_uuid(agent_id, agent_not_found())
        await agents.delete(aid)

    @post("/{agent_id:str}/revoke", operation_id="operatorRevokeAgent", status_code=HTTP_200_OK)
    async def revoke(self, agents: NamedDependency[AgentService], agent_id: FromPath[str]) -> Agent:
        """Revoke an agent's token at once; the agent stays listed with its ``revoked_at``."""
        aid = path_uuid(agent_id, agent_not_found())
        return await agents.revoke(aid)

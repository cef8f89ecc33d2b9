"""/operator/plans (plans CRUD) and /operator/orgs/{org_id}/plan (assignment and overrides)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .schemas import OrgLimits, OrgPlanAssign, Plan, PlanCreate, PlanUpdate
from .service import PlanService, org_not_found

LIST = PageSize(default=50, cap=500)


class OperatorPlanController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/"
    tags = ["operator"]
    dependencies = {"plans": provide(PlanService)}

    @post(
        "/plans",
        operation_id="operatorCreatePlan",
        status_code=HTTP_201_CREATED,
        responses=errors(s409="[PLAN_EXISTS] a plan with this id exists"),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        plans: NamedDependency[PlanService],
        data: JSONBody[PlanCreate],
    ) -> Response[Plan]:
        """Create a plan; any limit left out (or null) is no limit."""
        plan = await plans.create(await strict_body(request, PlanCreate))
        return Response(
            plan, status_code=HTTP_201_CREATED, headers={"Location": f"/operator/plans/{plan.id}"}
        )

    @get("/plans", operation_id="operatorListPlans")
    async def list_plans(
        self,
        plans: NamedDependency[PlanService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Plan]:
        """Every plan with how many orgs are on it, by id."""
        paging = LIST.paging(limit, offset)
        items, total = await plans.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @get("/plans/{plan_id:str}", operation_id="operatorGetPlan")
    async def get_plan(self, plans: NamedDependency[PlanService], plan_id: FromPath[str]) -> Plan:
        """One plan."""
        return await plans.get(plan_id)

    @patch("/plans/{plan_id:str}", operation_id="operatorUpdatePlan")
    async def update(
        self,
        request: Request[Any, Any, Any],
        plans: NamedDependency[PlanService],
        plan_id: FromPath[str],
        data: JSONBody[PlanUpdate],
    ) -> Plan:
        """Change a plan's name or limits (null removes a limit); every org on it follows."""
        return await plans.update(plan_id, await strict_body(request, PlanUpdate))

    @delete(
        "/plans/{plan_id:str}",
        operation_id="operatorDeletePlan",
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(s409="[PLAN_IN_USE] orgs are on this plan"),
    )
    async def delete_plan(
        self, plans: NamedDependency[PlanService], plan_id: FromPath[str]
    ) -> None:
        """Delete a plan no org is on."""
        await plans.delete(plan_id)

    @get("/orgs/{org_id:str}/plan", operation_id="operatorGetOrgPlan")
    async def get_org_plan(
        self, plans: NamedDependency[PlanService], org_id: FromPath[str]
    ) -> OrgLimits:
        """An org's plan, its overrides and the limits that apply."""
        return await plans.org_limits(path_uuid(org_id, org_not_found()))

    @put(
        "/orgs/{org_id:str}/plan",
        operation_id="operatorAssignOrgPlan",
        responses=errors(s422="[PLAN_NOT_FOUND] no such plan"),
    )
    async def assign(
        self,
        request: Request[Any, Any, Any],
        plans: NamedDependency[PlanService],
        org_id: FromPath[str],
        data: JSONBody[OrgPlanAssign],
    ) -> OrgLimits:
        """Put an org on a plan, with its own overrides (replacing any it had). Caps apply to
        the next create; rate budgets within the key cache time (VIGIL_KEY_CACHE_SECS)."""
        oid = path_uuid(org_id, org_not_found())
        return await plans.assign(oid, await strict_body(request, OrgPlanAssign))

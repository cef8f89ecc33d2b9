"""/operator/regions (instance admin CRUD) and /api/v1/regions (the tenant catalog)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.auth import OrgContext, resources
from control_plane.pagination import Page, page_params
from control_plane.requests import strict_body

from .schemas import Region, RegionCreate, RegionSummary, RegionUpdate
from .service import RegionService

LIST_DEFAULT, LIST_CAP = 50, 1000


class OperatorRegionController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/regions"
    tags = ["operator"]

    @post("/", operation_id="operatorCreateRegion", status_code=HTTP_201_CREATED)
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[RegionCreate]
    ) -> Response[Region]:
        """Create a region. Its slug ``id`` is permanent; agents and targets refer to it."""
        body = await strict_body(request, RegionCreate)
        async with resources(request).db.connection() as conn:
            region = await RegionService(conn).create(body)
        return Response(
            region,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/operator/regions/{region.id}"},
        )

    @get("/", operation_id="operatorListRegions")
    async def list_regions(
        self,
        request: Request[Any, Any, Any],
        limit: int | None = Parameter(default=None, description="page size (default 50, max 1000)"),
        offset: int | None = Parameter(default=None),
    ) -> Page[Region]:
        """Every region, enabled or not, ordered by id."""
        lim, off = page_params(limit, offset, LIST_DEFAULT, LIST_CAP)
        async with resources(request).db.connection() as conn:
            items, total = await RegionService(conn).list_page(limit=lim, offset=off)
        return Page(items=items, total=total, limit=lim, offset=off)

    @get("/{region_id:str}", operation_id="operatorGetRegion")
    async def get_region(self, request: Request[Any, Any, Any], region_id: FromPath[str]) -> Region:
        """One region."""
        async with resources(request).db.connection() as conn:
            return await RegionService(conn).get(region_id)

    @patch("/{region_id:str}", operation_id="operatorUpdateRegion")
    async def update(
        self,
        request: Request[Any, Any, Any],
        region_id: FromPath[str],
        data: JSONBody[RegionUpdate],
    ) -> Region:
        """Rename, relocate, enable or disable a region, or set whether its agents may probe
        private addresses (``allow_private_targets``). A disabled region leaves the tenant
        catalog and can no longer be assigned to targets."""
        body = await strict_body(request, RegionUpdate)
        async with resources(request).db.connection() as conn:
            return await RegionService(conn).update(region_id, body)

    @delete(
        "/{region_id:str}", operation_id="operatorDeleteRegion", status_code=HTTP_204_NO_CONTENT
    )
    async def delete_region(
        self, request: Request[Any, Any, Any], region_id: FromPath[str]
    ) -> None:
        """Delete a region no target and no agent refers to (409 ``REGION_IN_USE`` otherwise)."""
        async with resources(request).db.connection() as conn:
            await RegionService(conn).delete(region_id)


class RegionCatalogController(Controller):
    """Mounted under /api/v1: what a tenant may pick for ``PUT /targets/{id}/regions``."""

    path = "/regions"
    tags = ["regions"]

    @get("/", operation_id="listRegions")
    async def list_regions(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        limit: int | None = Parameter(default=None, description="page size (default 50, max 1000)"),
        offset: int | None = Parameter(default=None),
    ) -> Page[RegionSummary]:
        """The enabled probe regions (id, name, location), ordered by id."""
        lim, off = page_params(limit, offset, LIST_DEFAULT, LIST_CAP)
        async with resources(request).db.connection() as conn:
            items, total = await RegionService(conn).list_enabled(limit=lim, offset=off)
        return Page(items=items, total=total, limit=lim, offset=off)

"""/operator/regions (instance admin CRUD) and /api/v1/regions (the tenant catalog)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.errors import ApiError, not_found
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .grants import GrantService, grant_not_found
from .schemas import GrantUpdate, Region, RegionCreate, RegionGrant, RegionSummary, RegionUpdate
from .service import RegionCatalog, RegionService

LIST = PageSize(default=50, cap=1000)


def org_not_found() -> ApiError:
    return not_found("ORG_NOT_FOUND", "org")


class OperatorRegionController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/regions"
    tags = ["operator"]
    dependencies = {"regions": provide(RegionService)}

    @post(
        "/",
        operation_id="operatorCreateRegion",
        status_code=HTTP_201_CREATED,
        responses=errors(s409="[REGION_EXISTS] a region with this id exists"),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        regions: NamedDependency[RegionService],
        data: JSONBody[RegionCreate],
    ) -> Response[Region]:
        """Create a region. Its slug ``id`` is permanent; agents and targets refer to it."""
        region = await regions.create(await strict_body(request, RegionCreate))
        return Response(
            region,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/operator/regions/{region.id}"},
        )

    @get("/", operation_id="operatorListRegions")
    async def list_regions(
        self,
        regions: NamedDependency[RegionService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Region]:
        """Every region, enabled or not, ordered by id."""
        paging = LIST.paging(limit, offset)
        items, total = await regions.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @get("/{region_id:str}", operation_id="operatorGetRegion")
    async def get_region(
        self, regions: NamedDependency[RegionService], region_id: FromPath[str]
    ) -> Region:
        """One region."""
        return await regions.get(region_id)

    @patch("/{region_id:str}", operation_id="operatorUpdateRegion")
    async def update(
        self,
        request: Request[Any, Any, Any],
        regions: NamedDependency[RegionService],
        region_id: FromPath[str],
        data: JSONBody[RegionUpdate],
    ) -> Region:
        """Rename, relocate, enable or disable a region, or set whether its agents may probe
        private addresses (``allow_private_targets``). A disabled region leaves the tenant
        catalog and can no longer be assigned to targets."""
        return await regions.update(region_id, await strict_body(request, RegionUpdate))

    @delete(
        "/{region_id:str}",
        operation_id="operatorDeleteRegion",
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(s409="[REGION_IN_USE] targets or agents still refer to the region"),
    )
    async def delete_region(
        self, regions: NamedDependency[RegionService], region_id: FromPath[str]
    ) -> None:
        """Delete a region no target and no agent refers to (409 ``REGION_IN_USE`` otherwise)."""
        await regions.delete(region_id)


class RegionCatalogController(Controller):
    """Mounted under /api/v1: what a tenant may pick for ``PUT /targets/{id}/regions``."""

    path = "/regions"
    tags = ["regions"]
    dependencies = {"catalog": provide(RegionCatalog)}

    @get("/", operation_id="listRegions", opt=requires("targets:read"))
    async def list_regions(
        self,
        catalog: NamedDependency[RegionCatalog],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[RegionSummary]:
        """The probe regions this org may pick (enabled, and public or granted to it), ordered
        by id, with whether its targets may probe private addresses from each."""
        paging = LIST.paging(limit, offset)
        items, total = await catalog.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)


class OperatorGrantController(Controller):
    """Mounted under the operator router: who may use a region, and probe private addresses."""

    path = "/regions/{region_id:str}/grants"
    tags = ["operator"]
    dependencies = {"grants": provide(GrantService)}

    @get("/", operation_id="operatorListRegionGrants")
    async def list_grants(
        self,
        grants: NamedDependency[GrantService],
        region_id: FromPath[str],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[RegionGrant]:
        """The orgs granted this region, by org id."""
        paging = LIST.paging(limit, offset)
        items, total = await grants.list_page(region_id, limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @put(
        "/{org_id:str}",
        operation_id="operatorPutRegionGrant",
        status_code=HTTP_200_OK,
        responses={
            201: ResponseSpec(RegionGrant, description="the grant, new"),
            **errors(s404="[REGION_NOT_FOUND, ORG_NOT_FOUND] no such region or org"),
        },
    )
    async def put_grant(
        self,
        request: Request[Any, Any, Any],
        grants: NamedDependency[GrantService],
        region_id: FromPath[str],
        org_id: FromPath[str],
        data: JSONBody[GrantUpdate],
    ) -> Response[RegionGrant]:
        """Grant the region to an org (it may use the region when restricted), and say whether
        its targets may probe private addresses from it. 201 when new, 200 when changed."""
        oid = path_uuid(org_id, org_not_found())
        grant, created = await grants.put(region_id, oid, await strict_body(request, GrantUpdate))
        return Response(grant, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @delete(
        "/{org_id:str}", operation_id="operatorDeleteRegionGrant", status_code=HTTP_204_NO_CONTENT
    )
    async def delete_grant(
        self, grants: NamedDependency[GrantService], region_id: FromPath[str], org_id: FromPath[str]
    ) -> None:
        """Withdraw the grant. From a restricted region, the org's targets are unbound at once."""
        await grants.delete(region_id, path_uuid(org_id, grant_not_found()))

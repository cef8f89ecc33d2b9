"""/api/v1/targets: thin handlers that parse, authorise (org from token), call the service."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.auth import OrgContext, resources
from control_plane.pagination import Page, page_params
from control_plane.requests import path_uuid, query_text, strict_body, write_source

from .schemas import Target, TargetCreate, TargetRegions, TargetUpdate
from .service import TargetService, target_not_found

LIST_DEFAULT, LIST_CAP = 50, 1000


class TargetController(Controller):
    path = "/targets"
    tags = ["targets"]

    @post("/", operation_id="createTarget", status_code=HTTP_201_CREATED)
    async def create(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        data: JSONBody[TargetCreate],
    ) -> Response[Target]:
        """Create one target. Returns the target with its UUIDv7 id and a ``Location`` header."""
        body = await strict_body(request, TargetCreate)
        res = resources(request)
        async with res.db.connection() as conn:
            target = await TargetService(
                conn, res.sealer, org, res.settings.security.token_key
            ).create(body, write_source(request))
        return Response(
            target,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/targets/{target.id}"},
        )

    @get("/", operation_id="listTargets")
    async def list_targets(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        limit: int | None = Parameter(default=None, description="page size (default 50, max 1000)"),
        offset: int | None = Parameter(default=None, description="rows to skip (default 0)"),
        tag: str | None = Parameter(default=None, description="only targets carrying this tag"),
        enabled: FromQuery[bool | None] = None,
        q: str | None = Parameter(default=None, description="substring of name, url or host"),
    ) -> Page[Target]:
        """List the org's targets, oldest first."""
        lim, off = page_params(limit, offset, LIST_DEFAULT, LIST_CAP)
        res = resources(request)
        async with res.db.connection() as conn:
            items, total = await TargetService(conn, res.sealer, org).list_page(
                limit=lim,
                offset=off,
                tag=query_text(tag, "tag"),
                enabled=enabled,
                q=query_text(q, "q"),
            )
        return Page(items=items, total=total, limit=lim, offset=off)

    @get("/{target_id:str}", operation_id="getTarget")
    async def get_target(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
    ) -> Target:
        """One target; credentials read back as ``***``."""
        res = resources(request)
        async with res.db.connection() as conn:
            return await TargetService(conn, res.sealer, org).get(
                path_uuid(target_id, target_not_found())
            )

    @patch("/{target_id:str}", operation_id="updateTarget")
    async def update(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        data: JSONBody[TargetUpdate],
    ) -> Target:
        """Update any field; omit ``check`` to keep the stored credentials."""
        tid = path_uuid(target_id, target_not_found())
        body = await strict_body(request, TargetUpdate)
        res = resources(request)
        async with res.db.connection() as conn:
            return await TargetService(
                conn, res.sealer, org, res.settings.security.token_key
            ).update(tid, body, write_source(request))

    @delete("/{target_id:str}", operation_id="deleteTarget", status_code=HTTP_204_NO_CONTENT)
    async def delete_target(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
    ) -> None:
        """Delete a target and everything that belongs to it."""
        res = resources(request)
        async with res.db.connection() as conn:
            await TargetService(conn, res.sealer, org).delete(
                path_uuid(target_id, target_not_found())
            )

    @get("/{target_id:str}/regions", operation_id="getTargetRegions")
    async def get_regions(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
    ) -> TargetRegions:
        """The regions this target is probed from."""
        res = resources(request)
        async with res.db.connection() as conn:
            regions = await TargetService(conn, res.sealer, org).get_regions(
                path_uuid(target_id, target_not_found())
            )
        return TargetRegions(regions=regions)

    @put("/{target_id:str}/regions", operation_id="setTargetRegions")
    async def set_regions(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        data: JSONBody[TargetRegions],
    ) -> TargetRegions:
        """Replace the set of regions this target is probed from (enabled regions only)."""
        tid = path_uuid(target_id, target_not_found())
        body = await strict_body(request, TargetRegions)
        res = resources(request)
        async with res.db.connection() as conn:
            regions = await TargetService(conn, res.sealer, org).set_regions(
                tid, body.regions, write_source(request)
            )
        return TargetRegions(regions=regions)

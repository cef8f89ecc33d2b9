"""/api/v1/maintenance: schedule, list, read, edit and cancel maintenance windows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body, write_source
from control_plane.core.service import provide

from .schemas import MaintenanceCreate, MaintenanceUpdate, MaintenanceWindow
from .service import MaintenanceService, window_not_found

LIST = PageSize(default=50, cap=1000)


class MaintenanceController(Controller):
    path = "/maintenance"
    tags = ["maintenance"]
    dependencies = {"maintenance": provide(MaintenanceService)}

    @post(
        "/",
        operation_id="createMaintenance",
        opt=requires("maintenance:write"),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        maintenance: NamedDependency[MaintenanceService],
        data: JSONBody[MaintenanceCreate],
    ) -> Response[MaintenanceWindow]:
        """Schedule a window over [starts_at, ends_at) for ``target_ids`` (omitted or empty: the
        whole org). ``ends_at`` must be after ``starts_at`` and in the future (BAD_TIME_RANGE)."""
        body = await strict_body(request, MaintenanceCreate)
        window = await maintenance.create(body, write_source(request))
        return Response(
            window,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/maintenance/{window.id}"},
        )

    @get("/", operation_id="listMaintenance", opt=requires("maintenance:read"))
    async def list_windows(
        self,
        maintenance: NamedDependency[MaintenanceService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        status: Literal["active", "upcoming", "past", "all"] = Parameter(
            default="all", description="active, upcoming, past or all (default)"
        ),
    ) -> Page[MaintenanceWindow]:
        """The org's windows, newest start first."""
        paging = LIST.paging(limit, offset)
        items, total = await maintenance.page(
            None if status == "all" else status, paging.limit, paging.offset
        )
        return paging.page(items, total)

    @get("/{window_id:str}", operation_id="getMaintenance", opt=requires("maintenance:read"))
    async def get_window(
        self, maintenance: NamedDependency[MaintenanceService], window_id: FromPath[str]
    ) -> MaintenanceWindow:
        """One window."""
        return await maintenance.get(path_uuid(window_id, window_not_found()))

    @patch(
        "/{window_id:str}",
        operation_id="updateMaintenance",
        opt=requires("maintenance:write"),
        responses=errors(s409="[MAINTENANCE_ENDED] the window has ended"),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        maintenance: NamedDependency[MaintenanceService],
        window_id: FromPath[str],
        data: JSONBody[MaintenanceUpdate],
    ) -> MaintenanceWindow:
        """Edit title, description, time range or targets of a window that has not ended."""
        wid = path_uuid(window_id, window_not_found())
        body = await strict_body(request, MaintenanceUpdate)
        return await maintenance.update(wid, body, write_source(request))

    @delete(
        "/{window_id:str}",
        operation_id="deleteMaintenance",
        opt=requires("maintenance:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_window(
        self, maintenance: NamedDependency[MaintenanceService], window_id: FromPath[str]
    ) -> None:
        """Cancel a window; notifications it held go out (or are dropped) at the next sweep."""
        await maintenance.delete(path_uuid(window_id, window_not_found()))

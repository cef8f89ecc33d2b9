"""/api/v1/targets/{id}/incidents and /api/v1/incidents."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid
from control_plane.core.service import provide
from control_plane.core.timerange import FromTime, ToTime, span_of
from control_plane.domain.targets.service import target_not_found

from .schemas import Incident
from .service import IncidentService

INCIDENTS = PageSize(default=100, cap=1000)


class IncidentController(Controller):
    path = "/"
    tags = ["incidents"]
    dependencies = {"incidents": provide(IncidentService)}

    @get(
        "/targets/{target_id:str}/incidents",
        operation_id="listTargetIncidents",
        opt=requires("incidents:read"),
    )
    async def target_incidents(
        self,
        incidents: NamedDependency[IncidentService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        limit: Annotated[int | None, INCIDENTS.limit] = None,
        offset: Offset = None,
        ongoing_only: bool = Parameter(default=False),
    ) -> Page[Incident]:
        """This target's incidents overlapping [from, to) (default the last 24 h), newest first."""
        tid = path_uuid(target_id, target_not_found())
        paging = INCIDENTS.paging(limit, offset)
        items, total = await incidents.page(
            span_of(from_, to),
            target_id=tid,
            ongoing_only=ongoing_only,
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.page(items, total)

    @get("/incidents", operation_id="listIncidents", opt=requires("incidents:read"))
    async def org_incidents(
        self,
        incidents: NamedDependency[IncidentService],
        from_: FromTime = None,
        to: ToTime = None,
        limit: Annotated[int | None, INCIDENTS.limit] = None,
        offset: Offset = None,
        ongoing_only: bool = Parameter(default=False),
    ) -> Page[Incident]:
        """Every incident of the org overlapping [from, to), newest first."""
        paging = INCIDENTS.paging(limit, offset)
        items, total = await incidents.page(
            span_of(from_, to),
            target_id=None,
            ongoing_only=ongoing_only,
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.page(items, total)

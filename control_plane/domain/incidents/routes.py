"""/api/v1/targets/{id}/incidents and /api/v1/incidents."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from control_plane.core.pagination import Page, Paging, paging
from control_plane.core.requests import path_uuid
from control_plane.core.service import provide
from control_plane.core.timerange import TIME_RANGE, TimeRange
from control_plane.domain.targets.service import target_not_found

from .schemas import Incident
from .service import IncidentService

INCIDENTS_DEFAULT, INCIDENTS_CAP = 100, 1000


class IncidentController(Controller):
    path = "/"
    tags = ["incidents"]
    dependencies = {
        "incidents": provide(IncidentService),
        "span": TIME_RANGE,
        "paging": paging(INCIDENTS_DEFAULT, INCIDENTS_CAP),
    }

    @get("/targets/{target_id:str}/incidents", operation_id="listTargetIncidents")
    async def target_incidents(
        self,
        incidents: NamedDependency[IncidentService],
        target_id: FromPath[str],
        span: NamedDependency[TimeRange],
        paging: NamedDependency[Paging],
        ongoing_only: bool = Parameter(default=False),
    ) -> Page[Incident]:
        """This target's incidents overlapping [from, to) (default the last 24 h), newest first."""
        tid = path_uuid(target_id, target_not_found())
        items, total = await incidents.page(
            span, target_id=tid, ongoing_only=ongoing_only, limit=paging.limit, offset=paging.offset
        )
        return paging.page(items, total)

    @get("/incidents", operation_id="listIncidents")
    async def org_incidents(
        self,
        incidents: NamedDependency[IncidentService],
        span: NamedDependency[TimeRange],
        paging: NamedDependency[Paging],
        ongoing_only: bool = Parameter(default=False),
    ) -> Page[Incident]:
        """Every incident of the org overlapping [from, to), newest first."""
        items, total = await incidents.page(
            span,
            target_id=None,
            ongoing_only=ongoing_only,
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.page(items, total)

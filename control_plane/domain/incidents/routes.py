"""/api/v1/targets/{id}/incidents and /api/v1/incidents."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from control_plane.core import csv_export
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid
from control_plane.core.service import provide
from control_plane.core.timerange import FromTime, ToTime, span_of
from control_plane.domain.targets.service import target_not_found

from .schemas import Incident
from .service import IncidentService

INCIDENT_COLUMNS = tuple(Incident.__struct_fields__)

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
        format_: csv_export.FormatParam = None,
    ) -> Response[Page[Incident]]:
        """This target's incidents overlapping [from, to) (default the last 24 h), newest first;
        ``format=csv`` streams all of them as CSV."""
        tid = path_uuid(target_id, target_not_found())
        if csv_export.wants_csv(format_):
            rows = await incidents.export(
                span_of(from_, to), target_id=tid, ongoing_only=ongoing_only
            )
            return cast(
                Response[Page[Incident]],
                csv_export.csv_response(INCIDENT_COLUMNS, rows, f"incidents-{tid}.csv"),
            )
        paging = INCIDENTS.paging(limit, offset)
        items, total = await incidents.page(
            span_of(from_, to),
            target_id=tid,
            ongoing_only=ongoing_only,
            limit=paging.limit,
            offset=paging.offset,
        )
        return Response(paging.page(items, total))

    @get("/incidents", operation_id="listIncidents", opt=requires("incidents:read"))
    async def org_incidents(
        self,
        incidents: NamedDependency[IncidentService],
        from_: FromTime = None,
        to: ToTime = None,
        limit: Annotated[int | None, INCIDENTS.limit] = None,
        offset: Offset = None,
        ongoing_only: bool = Parameter(default=False),
        format_: csv_export.FormatParam = None,
    ) -> Response[Page[Incident]]:
        """Every incident of the org overlapping [from, to), newest first; ``format=csv``
        streams all of them as CSV."""
        if csv_export.wants_csv(format_):
            rows = await incidents.export(
                span_of(from_, to), target_id=None, ongoing_only=ongoing_only
            )
            return cast(
                Response[Page[Incident]],
                csv_export.csv_response(INCIDENT_COLUMNS, rows, "incidents.csv"),
            )
        paging = INCIDENTS.paging(limit, offset)
        items, total = await incidents.page(
            span_of(from_, to),
            target_id=None,
            ongoing_only=ongoing_only,
            limit=paging.limit,
            offset=paging.offset,
        )
        return Response(paging.page(items, total))

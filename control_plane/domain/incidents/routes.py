"""/api/v1/targets/{id}/incidents and /api/v1/incidents: reads, lifecycle and narration."""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from control_plane.core import csv_export
from control_plane.core.errors import ApiError
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide
from control_plane.core.timerange import FromTime, ToTime, span_of
from control_plane.domain.targets.service import target_not_found

from .schemas import (
    SEVERITIES,
    STATES,
    Incident,
    IncidentDetail,
    IncidentPatch,
    IncidentUpdateCreate,
    LifecycleNote,
)
from .service import IncidentService, incident_not_found

INCIDENT_COLUMNS = tuple(Incident.__struct_fields__)

INCIDENTS = PageSize(default=100, cap=1000)
ENGINE_STATUSES = ("down", "degraded")
NO_NOTE = LifecycleNote()
LIFECYCLE_ERRORS = errors(
    s409="[INCIDENT_ALREADY_ACKNOWLEDGED] acknowledged already; "
    "[INCIDENT_ALREADY_RESOLVED] / [INCIDENT_RESOLVED] resolved already"
)


def _list_pattern(allowed: tuple[str, ...]) -> str:
    one = "(" + "|".join(allowed) + ")"
    return f"^{one}(,{one})*$"


def _choices(value: str | None, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    """A comma-separated filter of known values (None: no filter)."""
    if value is None or value == "":
        return None
    picked = [v.strip() for v in value.split(",")]
    bad = [v for v in picked if v not in allowed]
    if bad:
        raise ApiError(
            400,
            "INVALID_QUERY_PARAM",
            f"{name} takes a comma-separated list of {', '.join(allowed)}",
            f"/{name}",
        )
    return list(dict.fromkeys(picked))


async def _note(request: Request[Any, Any, Any]) -> LifecycleNote:
    """The optional body of acknowledge/resolve: none, or ``{"note": ...}``."""
    if not (await request.body()).strip():
        return LifecycleNote()
    return await strict_body(request, LifecycleNote)


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
        status: str | None = Parameter(
            default=None,
            max_length=200,
            pattern=_list_pattern(STATES + ENGINE_STATUSES),
            description="comma-separated: open, acknowledged, resolved (the lifecycle state) "
            "and/or down, degraded (what the engine saw)",
        ),
        severity: str | None = Parameter(
            default=None,
            max_length=200,
            pattern=_list_pattern(SEVERITIES),
            description="comma-separated: critical, major, minor",
        ),
        format_: csv_export.FormatParam = None,
    ) -> Response[Page[Incident]]:
        """Every incident of the org overlapping [from, to), newest first; ``format=csv``
        streams all of them as CSV."""
        picked = _choices(status, "status", STATES + ENGINE_STATUSES) or []
        states = [s for s in picked if s in STATES] or None
        statuses = [s for s in picked if s in ENGINE_STATUSES] or None
        severities = _choices(severity, "severity", SEVERITIES)
        if csv_export.wants_csv(format_):
            rows = await incidents.export(
                span_of(from_, to),
                target_id=None,
                ongoing_only=ongoing_only,
                states=states,
                statuses=statuses,
                severities=severities,
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
            states=states,
            statuses=statuses,
            severities=severities,
        )
        return Response(paging.page(items, total))

    @get("/incidents/{incident_id:str}", operation_id="getIncident", opt=requires("incidents:read"))
    async def get_incident(
        self, incidents: NamedDependency[IncidentService], incident_id: FromPath[str]
    ) -> IncidentDetail:
        """One incident with its lifecycle, narration and public timeline (oldest first)."""
        return await incidents.get(path_uuid(incident_id, incident_not_found()))

    @post(
        "/incidents/{incident_id:str}/acknowledge",
        operation_id="acknowledgeIncident",
        opt=requires("incidents:write"),
        status_code=HTTP_200_OK,
        responses=LIFECYCLE_ERRORS,
    )
    async def acknowledge(
        self,
        request: Request[Any, Any, Any],
        incidents: NamedDependency[IncidentService],
        incident_id: FromPath[str],
        data: Annotated[LifecycleNote, Body(description='optional: {"note": ...}')] = NO_NOTE,
    ) -> IncidentDetail:
        """``open`` → ``acknowledged``, recording who and when (and the note): reminders stop."""
        iid = path_uuid(incident_id, incident_not_found())
        return await incidents.acknowledge(iid, await _note(request))

    @post(
        "/incidents/{incident_id:str}/resolve",
        operation_id="resolveIncident",
        opt=requires("incidents:write"),
        status_code=HTTP_200_OK,
        responses=LIFECYCLE_ERRORS,
    )
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        incidents: NamedDependency[IncidentService],
        incident_id: FromPath[str],
        data: Annotated[LifecycleNote, Body(description='optional: {"note": ...}')] = NO_NOTE,
    ) -> IncidentDetail:
        """Resolve by hand, even while the target is still failing; a new incident opens only
        after the target has recovered and failed again."""
        iid = path_uuid(incident_id, incident_not_found())
        return await incidents.resolve(iid, await _note(request))

    @patch(
        "/incidents/{incident_id:str}",
        operation_id="updateIncident",
        opt=requires("incidents:write"),
    )
    async def narrate(
        self,
        request: Request[Any, Any, Any],
        incidents: NamedDependency[IncidentService],
        incident_id: FromPath[str],
        data: JSONBody[IncidentPatch],
    ) -> IncidentDetail:
        """Narration: ``public_title``, ``public_description``, ``severity``; JSON null clears
        a field (severity then follows the status again), an omitted one is left alone."""
        iid = path_uuid(incident_id, incident_not_found())
        return await incidents.narrate(iid, await strict_body(request, IncidentPatch))

    @post(
        "/incidents/{incident_id:str}/updates",
        operation_id="addIncidentUpdate",
        opt=requires("incidents:write"),
        status_code=HTTP_201_CREATED,
    )
    async def add_update(
        self,
        request: Request[Any, Any, Any],
        incidents: NamedDependency[IncidentService],
        incident_id: FromPath[str],
        data: JSONBody[IncidentUpdateCreate],
    ) -> IncidentDetail:
        """Append a status update (phase investigating / identified / monitoring / resolved /
        postmortem, message up to 2,000 characters); returns the incident with its timeline."""
        iid = path_uuid(incident_id, incident_not_found())
        return await incidents.add_update(iid, await strict_body(request, IncidentUpdateCreate))

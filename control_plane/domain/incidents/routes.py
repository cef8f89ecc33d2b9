"""/api/v1/targets/{id}/incidents and /api/v1/incidents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter, QueryParameter

from control_plane.auth import OrgContext, resources
from control_plane.domain.results.service import ensure_target
from control_plane.domain.targets.service import target_not_found
from control_plane.pagination import Page, page_params
from control_plane.requests import path_uuid
from control_plane.timerange import time_range

from .schemas import Incident
from .service import incidents_page

INCIDENTS_DEFAULT, INCIDENTS_CAP = 100, 1000


class IncidentController(Controller):
    path = "/"
    tags = ["incidents"]

    @get("/targets/{target_id:str}/incidents", operation_id="listTargetIncidents")
    async def target_incidents(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        ongoing_only: bool = Parameter(default=False),
        limit: int | None = Parameter(default=None, description="default 100, max 1000"),
        offset: int | None = Parameter(default=None),
    ) -> Page[Incident]:
        """This target's incidents overlapping [from, to) (default the last 24 h), newest first."""
        tid = path_uuid(target_id, target_not_found())
        return await _incidents(request, org, tid, from_, to, ongoing_only, limit, offset)

    @get("/incidents", operation_id="listIncidents")
    async def org_incidents(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        ongoing_only: bool = Parameter(default=False),
        limit: int | None = Parameter(default=None, description="default 100, max 1000"),
        offset: int | None = Parameter(default=None),
    ) -> Page[Incident]:
        """Every incident of the org overlapping [from, to), newest first."""
        return await _incidents(request, org, None, from_, to, ongoing_only, limit, offset)


async def _incidents(
    request: Request[Any, Any, Any],
    org: OrgContext,
    target_id: uuid.UUID | None,
    from_: datetime | None,
    to: datetime | None,
    ongoing_only: bool,
    limit: int | None,
    offset: int | None,
) -> Page[Incident]:
    """One page of the org's incidents, or of one of its targets' (404 if not the org's)."""
    start, end = time_range(from_, to)
    lim, off = page_params(limit, offset, INCIDENTS_DEFAULT, INCIDENTS_CAP)
    res = resources(request)
    async with res.db.connection() as conn:
        if target_id is not None:
            await ensure_target(conn, org.org_id, target_id)
        items, total = await incidents_page(
            conn,
            org.org_id,
            target_id=target_id,
            start=start,
            end=end,
            ongoing_only=ongoing_only,
            limit=lim,
            offset=off,
        )
    return Page(items=items, total=total, limit=lim, offset=off)

"""/api/v1/targets/{id}/results, /uptime, /latency and /latency/by-region."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter, QueryParameter

from control_plane.auth import OrgContext, resources
from control_plane.domain.targets.service import target_not_found
from control_plane.pagination import Page, page_params
from control_plane.requests import path_uuid
from control_plane.timerange import time_range

from .schemas import CheckResultOut, LatencyByRegion, LatencySeries, Uptime
from .service import latency, latency_by_region, results_page, uptime

RESULTS_DEFAULT, RESULTS_CAP = 1000, 10_000

T = TypeVar("T")


async def _read(
    request: Request[Any, Any, Any],
    org: OrgContext,
    target_id: str,
    from_: datetime | None,
    to: datetime | None,
    read: Callable[..., Awaitable[T]],
    **kw: Any,
) -> T:
    """One range read of one target: its id and [from, to) checked, on a pooled connection."""
    tid = path_uuid(target_id, target_not_found())
    start, end = time_range(from_, to)
    async with resources(request).db.connection() as conn:
        return await read(conn, org.org_id, tid, start=start, end=end, **kw)


class TargetResultsController(Controller):
    path = "/targets/{target_id:str}"
    tags = ["results"]

    @get("/results", operation_id="listTargetResults")
    async def results(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        region: str | None = Parameter(default=None, description="only this region's results"),
        limit: int | None = Parameter(default=None, description="default 1000, max 10000"),
        offset: int | None = Parameter(default=None),
    ) -> Page[CheckResultOut]:
        """Check results in [from, to) (default the last 24 h), newest first."""
        lim, off = page_params(limit, offset, RESULTS_DEFAULT, RESULTS_CAP)
        items, total = await _read(
            request, org, target_id, from_, to, results_page, region=region, limit=lim, offset=off
        )
        return Page(items=items, total=total, limit=lim, offset=off)

    @get("/uptime", operation_id="getTargetUptime")
    async def uptime(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        region: str | None = Parameter(default=None, description="only this region's results"),
    ) -> Uptime:
        """Result counts by status and the uptime percentage over [from, to).

        Full minutes the rollup job has settled come from the per-minute rollups; the partial
        minutes at the edges and the not-yet-settled tail from raw results, so the counts are
        exactly those of the raw results in the range."""
        return await _read(request, org, target_id, from_, to, uptime, region=region)

    @get("/latency", operation_id="getTargetLatency")
    async def latency(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        region: str | None = Parameter(default=None, description="only this region's samples"),
    ) -> LatencySeries:
        """Latency quantiles, mean and phase means over [from, to) in ~60 buckets (a multiple of
        60 s), read from the per-minute rollups."""
        return await _read(request, org, target_id, from_, to, latency, region=region)

    @get("/latency/by-region", operation_id="getTargetLatencyByRegion")
    async def latency_by_region(
        self,
        request: Request[Any, Any, Any],
        org: NamedDependency[OrgContext],
        target_id: FromPath[str],
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: datetime | None = Parameter(default=None),
        region: str | None = Parameter(default=None, description="only this region's samples"),
    ) -> LatencyByRegion:
        """As /latency, one series per region that has samples in the range."""
        return await _read(request, org, target_id, from_, to, latency_by_region, region=region)

"""/api/v1/targets/{id}/results, /uptime, /latency and /latency/by-region."""

from __future__ import annotations

from typing import Annotated, cast

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from control_plane.core import csv_export
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, query_text
from control_plane.core.service import provide
from control_plane.core.timerange import FromTime, ToTime, span_of
from control_plane.domain.targets.service import target_not_found

from .schemas import CheckResultOut, LatencyByRegion, LatencySeries, Performance, Uptime
from .service import ResultService

RESULTS = PageSize(default=1000, cap=10_000)
# The CSV export's columns: paths into a result's JSON form.
RESULT_COLUMNS = (
    "target_id",
    "region",
    "timestamp",
    "started_at",
    "finished_at",
    "status",
    "latency_ms",
    "status_code",
    "error",
    "error_code",
    "timings.dns_ms",
    "timings.connect_ms",
    "timings.tls_ms",
    "timings.ttfb_ms",
    "timings.total_ms",
    "details",
)


class TargetResultsController(Controller):
    path = "/targets/{target_id:str}"
    tags = ["results"]
    dependencies = {"results": provide(ResultService)}

    @get("/results", operation_id="listTargetResults", opt=requires("targets:read"))
    async def results(
        self,
        results: NamedDependency[ResultService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        limit: Annotated[int | None, RESULTS.limit] = None,
        offset: Offset = None,
        region: str | None = Parameter(
            default=None, description="only this region's results", max_length=200
        ),
        format_: csv_export.FormatParam = None,
    ) -> Response[Page[CheckResultOut]]:
        """Check results in [from, to) (default the last 24 h), newest first; ``format=csv``
        streams all of them as CSV."""
        tid = path_uuid(target_id, target_not_found())
        if csv_export.wants_csv(format_):
            rows = await results.export(
                tid, span_of(from_, to), region=query_text(region, "region")
            )
            return cast(
                Response[Page[CheckResultOut]],
                csv_export.csv_response(RESULT_COLUMNS, rows, f"results-{tid}.csv"),
            )
        paging = RESULTS.paging(limit, offset)
        items, total = await results.results_page(
            tid,
            span_of(from_, to),
            region=query_text(region, "region"),
            limit=paging.limit,
            offset=paging.offset,
        )
        return Response(paging.page(items, total))

    @get("/performance", operation_id="getTargetPerformance", opt=requires("targets:read"))
    async def performance(
        self,
        results: NamedDependency[ResultService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        region: str | None = Parameter(
            default=None, description="only this region's results", max_length=200
        ),
    ) -> Performance:
        """Per-phase timings (dns, connect, tls, ttfb, download, total: mean, p50, p95) of the
        checks in [from, to) (default the last 24 h) and its 10 slowest checks."""
        return await results.performance(
            path_uuid(target_id, target_not_found()),
            span_of(from_, to),
            region=query_text(region, "region"),
        )

    @get("/uptime", operation_id="getTargetUptime", opt=requires("targets:read"))
    async def uptime(
        self,
        results: NamedDependency[ResultService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        region: str | None = Parameter(
            default=None, description="only this region's results", max_length=200
        ),
        exclude_maintenance: bool = Parameter(
            default=False,
            description="leave out the results of the times a maintenance window covered "
            "the target",
        ),
    ) -> Uptime:
        """Result counts by status and the uptime percentage over [from, to).

        Full minutes the rollup job has settled come from the per-minute rollups; the partial
        minutes at the edges and the not-yet-settled tail from raw results, so the counts are
        exactly those of the raw results in the range."""
        tid = path_uuid(target_id, target_not_found())
        return await results.uptime(
            tid,
            span_of(from_, to),
            region=query_text(region, "region"),
            exclude_maintenance=exclude_maintenance,
        )

    @get("/latency", operation_id="getTargetLatency", opt=requires("targets:read"))
    async def latency(
        self,
        results: NamedDependency[ResultService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        region: str | None = Parameter(
            default=None, description="only this region's samples", max_length=200
        ),
    ) -> LatencySeries:
        """Latency quantiles, mean and phase means over [from, to) in ~60 buckets (a multiple of
        60 s), read from the per-minute rollups."""
        tid = path_uuid(target_id, target_not_found())
        return await results.latency(tid, span_of(from_, to), region=query_text(region, "region"))

    @get(
        "/latency/by-region", operation_id="getTargetLatencyByRegion", opt=requires("targets:read")
    )
    async def latency_by_region(
        self,
        results: NamedDependency[ResultService],
        target_id: FromPath[str],
        from_: FromTime = None,
        to: ToTime = None,
        region: str | None = Parameter(
            default=None, description="only this region's samples", max_length=200
        ),
    ) -> LatencyByRegion:
        """As /latency, one series per region that has samples in the range."""
        tid = path_uuid(target_id, target_not_found())
        return await results.latency_by_region(
            tid, span_of(from_, to), region=query_text(region, "region")
        )

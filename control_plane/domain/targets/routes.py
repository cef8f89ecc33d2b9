"""/api/v1/targets: thin handlers that parse, authorise (org from token), call the service."""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core import csv_export, idempotency
from control_plane.core.errors import ApiError
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, query_text, strict_body, write_source
from control_plane.core.service import provide
from shared.checks import KINDS

from .schemas import (
    CURRENT_STATUSES,
    Target,
    TargetCreate,
    TargetRegions,
    TargetUpdate,
)
from .service import SORTS, TargetService, target_not_found


def one_of(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None or value in allowed:
        return value
    raise ApiError(
        400, "INVALID_QUERY_PARAM", f"{name} must be one of {', '.join(allowed)}", f"/{name}"
    )


LIST = PageSize(default=50, cap=1000)
# The CSV export of the list: paths into a target's JSON form.
TARGET_COLUMNS = (
    "id",
    "name",
    "check.type",
    "check.url",
    "check.host",
    "interval",
    "enabled",
    "tags",
    "regions",
    "status",
    "last_result.at",
    "last_result.status",
    "last_result.latency_ms",
    "last_result.error",
    "last_24h.checks",
    "last_24h.uptime_pct",
    "incident.id",
    "created_at",
    "updated_at",
    "write_source",
)
# What a target's write can answer beyond the common errors (core/observability/openapi.py).
WRITE_ERRORS = errors(
    s422="[MIN_CHECK_INTERVAL] interval below the kind's or plan's floor; "
    "[INVALID_REGION_POLICY] a region count past the target's regions; "
    "[QUOTA_EXCEEDED] the org's plan allows no more targets"
)


class TargetController(Controller):
    path = "/targets"
    tags = ["targets"]
    dependencies = {"targets": provide(TargetService)}

    @post(
        "/",
        operation_id="createTarget",
        opt=requires("targets:write"),
        status_code=HTTP_201_CREATED,
        responses=WRITE_ERRORS,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        targets: NamedDependency[TargetService],
        data: JSONBody[TargetCreate],
    ) -> Response[Target]:
        """Create one target. Returns the target with its UUIDv7 id and a ``Location`` header.
        An ``Idempotency-Key`` header makes a retry with the same body answer the first
        answer for 24 h instead of creating again."""
        raw = await request.body()
        body = await strict_body(request, TargetCreate)

        async def run() -> idempotency.Stored:
            target = await targets.create(body, write_source(request))
            location = {"Location": f"/api/v1/targets/{target.id}"}
            return idempotency.json_answer(HTTP_201_CREATED, target, location)

        return cast(
            Response[Target],
            await idempotency.answer_once(targets, request, "targets.create", raw, run),
        )

    @get("/", operation_id="listTargets", opt=requires("targets:read"))
    async def list_targets(
        self,
        targets: NamedDependency[TargetService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        tag: str | None = Parameter(
            default=None, description="only targets carrying this tag", max_length=200
        ),
        enabled: FromQuery[bool | None] = None,
        q: str | None = Parameter(
            default=None, description="substring of name, url or host", max_length=200
        ),
        kind: str | None = Parameter(
            default=None,
            description=f"check kind: {', '.join(KINDS)}",
            max_length=50,
            schema_extra={"enum": list(KINDS)},
        ),
        status: str | None = Parameter(
            default=None,
            description=f"current status: {', '.join(CURRENT_STATUSES)}",
            max_length=50,
            schema_extra={"enum": list(CURRENT_STATUSES)},
        ),
        region: str | None = Parameter(
            default=None, description="only targets probed from this region", max_length=200
        ),
        sort: str | None = Parameter(
            default=None,
            description="name, created_at, status or last_checked_at; '-' in front for "
            "descending; ties are broken by id (default: id, i.e. oldest first)",
            max_length=50,
            schema_extra={"enum": list(SORTS)},
        ),
        format_: csv_export.FormatParam = None,
    ) -> Response[Page[Target]]:
        """List the org's targets (oldest first unless ``sort``), each with its current
        status, last result, last 24 h and open incident."""
        filters: dict[str, Any] = {
            "tag": query_text(tag, "tag"),
            "enabled": enabled,
            "q": query_text(q, "q"),
            "kind": one_of(kind, "kind", tuple(KINDS)),
            "status": one_of(status, "status", CURRENT_STATUSES),
            "region": query_text(region, "region"),
            "sort": query_text(sort, "sort"),
        }
        if csv_export.wants_csv(format_):
            rows = targets.export(**filters)
            return cast(
                Response[Page[Target]], csv_export.csv_response(TARGET_COLUMNS, rows, "targets.csv")
            )
        paging = LIST.paging(limit, offset)
        items, total = await targets.list_page(limit=paging.limit, offset=paging.offset, **filters)
        return Response(paging.page(items, total))

    @get("/{target_id:str}", operation_id="getTarget", opt=requires("targets:read"))
    async def get_target(
        self, targets: NamedDependency[TargetService], target_id: FromPath[str]
    ) -> Target:
        """One target; credentials read back as ``***``."""
        return await targets.get(path_uuid(target_id, target_not_found()))

    @patch(
        "/{target_id:str}",
        operation_id="updateTarget",
        opt=requires("targets:write"),
        responses=WRITE_ERRORS,
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        targets: NamedDependency[TargetService],
        target_id: FromPath[str],
        data: JSONBody[TargetUpdate],
    ) -> Target:
        """Update any field; omit ``check`` to keep the stored credentials."""
        tid = path_uuid(target_id, target_not_found())
        body = await strict_body(request, TargetUpdate)
        return await targets.update(tid, body, write_source(request))

    @delete(
        "/{target_id:str}",
        operation_id="deleteTarget",
        opt=requires("targets:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_target(
        self, targets: NamedDependency[TargetService], target_id: FromPath[str]
    ) -> None:
        """Delete a target and everything that belongs to it."""
        await targets.delete(path_uuid(target_id, target_not_found()))

    @get("/{target_id:str}/regions", operation_id="getTargetRegions", opt=requires("targets:read"))
    async def get_regions(
        self, targets: NamedDependency[TargetService], target_id: FromPath[str]
    ) -> TargetRegions:
        """The regions this target is probed from."""
        return TargetRegions(
            regions=await targets.get_regions(path_uuid(target_id, target_not_found()))
        )

    @put(
        "/{target_id:str}/regions",
        operation_id="setTargetRegions",
        opt=requires("targets:write"),
        responses=errors(
            s422="[HEARTBEAT_HAS_NO_REGIONS] a heartbeat target is not probed from regions; "
            "[INVALID_REGION_POLICY] the target's region count is past the new regions"
        ),
    )
    async def set_regions(
        self,
        request: Request[Any, Any, Any],
        targets: NamedDependency[TargetService],
        target_id: FromPath[str],
        data: JSONBody[TargetRegions],
    ) -> TargetRegions:
        """Replace the set of regions this target is probed from (enabled regions only)."""
        tid = path_uuid(target_id, target_not_found())
        body = await strict_body(request, TargetRegions)
        regions = await targets.set_regions(tid, body.regions, write_source(request))
        return TargetRegions(regions=regions)

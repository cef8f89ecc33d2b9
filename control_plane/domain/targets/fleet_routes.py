"""/api/v1/targets fleet operations: bulk create, bulk actions, pause and resume.

Their own controller (same path): a body field named ``targets`` must not share a name with
``TargetController``'s ``targets`` dependency (Litestar would take a bad body for a broken
dependency and answer 500).
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from control_plane.core import idempotency
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, query_text, strict_body, write_source
from control_plane.core.service import provide

from .bulk import FleetService
from .schemas import (
    TagCount,
    Target,
    TargetBulkAction,
    TargetBulkActionResult,
    TargetBulkCreate,
    TargetBulkCreated,
)
from .service import target_not_found


class TargetFleetController(Controller):
    path = "/targets"
    tags = ["targets"]
    dependencies = {"fleet": provide(FleetService)}

    @post(
        "/bulk",
        operation_id="bulkCreateTargets",
        opt=requires("targets:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s400="[BULK_EMPTY] no targets; [BULK_TOO_LARGE] more than 10,000; "
            "[BULK_VALIDATION_FAILED] some items are invalid (details.errors: index, status, "
            "code, field, message per item), nothing was created",
            s422="[QUOTA_EXCEEDED] the batch would pass the org's max_targets",
        ),
    )
    async def bulk_create(
        self,
        request: Request[Any, Any, Any],
        fleet: NamedDependency[FleetService],
        data: JSONBody[TargetBulkCreate],
    ) -> Response[TargetBulkCreated]:
        """Create up to 10,000 targets at once, all or nothing: each item is validated exactly
        as ``createTarget`` validates its body. Accepts ``Idempotency-Key``."""
        raw = await request.body()

        async def run() -> idempotency.Stored:
            items = await fleet.bulk_create(raw, write_source(request))
            return idempotency.json_answer(
                HTTP_201_CREATED, TargetBulkCreated(created=len(items), items=items)
            )

        return cast(
            Response[TargetBulkCreated],
            await idempotency.answer_once(fleet, request, "targets.bulk", raw, run),
        )

    @post(
        "/bulk-action",
        operation_id="bulkTargetAction",
        opt=requires("targets:write"),
        status_code=HTTP_200_OK,
        responses=errors(
            s400="[BULK_EMPTY] no ids; [BULK_TOO_LARGE] more than 10,000 ids; "
            "[INVALID_ACTION] an unknown action or an update naming no field; "
            "[INVALID_TAG] a tag of tag_add / tag_remove"
        ),
    )
    async def bulk_action(
        self,
        request: Request[Any, Any, Any],
        fleet: NamedDependency[FleetService],
        data: JSONBody[TargetBulkAction],
    ) -> Response[TargetBulkActionResult]:
        """Apply one action (enable, disable, delete, tag_add, tag_remove, update of plain
        fields) to up to 10,000 ids in one transaction; the answer lists the ids that
        succeeded and, separately, those that failed with their code (another org's id is
        ``TARGET_NOT_FOUND``). Accepts ``Idempotency-Key``."""
        raw = await request.body()
        body = await strict_body(request, TargetBulkAction)

        async def run() -> idempotency.Stored:
            result = await fleet.bulk_action(body, write_source(request))
            return idempotency.json_answer(HTTP_200_OK, result)

        return cast(
            Response[TargetBulkActionResult],
            await idempotency.answer_once(fleet, request, "targets.bulk_action", raw, run),
        )

    @post(
        "/{target_id:str}/pause",
        operation_id="pauseTarget",
        opt=requires("targets:write"),
        status_code=HTTP_200_OK,
    )
    async def pause(
        self,
        request: Request[Any, Any, Any],
        fleet: NamedDependency[FleetService],
        target_id: FromPath[str],
    ) -> Target:
        """Stop checking the target until it is resumed (its status reads ``paused``)."""
        tid = path_uuid(target_id, target_not_found())
        return await fleet.set_paused(tid, True, write_source(request))

    @post(
        "/{target_id:str}/resume",
        operation_id="resumeTarget",
        opt=requires("targets:write"),
        status_code=HTTP_200_OK,
    )
    async def resume(
        self,
        request: Request[Any, Any, Any],
        fleet: NamedDependency[FleetService],
        target_id: FromPath[str],
    ) -> Target:
        """Check the target again on its interval."""
        tid = path_uuid(target_id, target_not_found())
        return await fleet.set_paused(tid, False, write_source(request))


TAGS = PageSize(default=50, cap=1000)


class TagController(Controller):
    path = "/tags"
    tags = ["targets"]
    dependencies = {"fleet": provide(FleetService)}

    @get("/", operation_id="listTags", opt=requires("targets:read"))
    async def list_tags(
        self,
        fleet: NamedDependency[FleetService],
        limit: Annotated[int | None, TAGS.limit] = None,
        offset: Offset = None,
        q: str | None = Parameter(
            default=None, description="prefix of the tag (autocomplete)", max_length=64
        ),
    ) -> Page[TagCount]:
        """Every tag in use on the org's targets (enabled or not) with its target count, most
        used first, then by name."""
        paging = TAGS.paging(limit, offset)
        items, total = await fleet.tags_page(
            prefix=query_text(q, "q", 64), limit=paging.limit, offset=paging.offset
        )
        return paging.page(items, total)

"""GET /api/v1/audit-log: the org's mutations, newest first (audit:read); and
GET /operator/audit-log: the operator's own actions (plans, deny-list, plan assignments)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from control_plane.core.errors import ApiError
from control_plane.core.ids import parse_uuid
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import query_text
from control_plane.core.service import provide
from control_plane.core.timerange import FromTime, ToTime, parse_time

from .schemas import AuditEntry, OperatorAuditEntry
from .service import AuditService, OperatorAuditService

LIST = PageSize(default=50, cap=500)


class AuditLogController(Controller):
    path = "/audit-log"
    tags = ["audit"]
    dependencies = {"audit": provide(AuditService)}

    @get("/", operation_id="listAuditLog", opt=requires("audit:read"))
    async def list_entries(
        self,
        audit: NamedDependency[AuditService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        action: str | None = Parameter(
            default=None, description="only this action, e.g. target.create", max_length=200
        ),
        resource_type: str | None = Parameter(
            default=None, description="only this kind of resource, e.g. target", max_length=200
        ),
        resource_id: str | None = Parameter(
            default=None, description="only this resource", max_length=200
        ),
        actor_id: str | None = Parameter(
            default=None,
            description="only changes by this key (or user)",
            max_length=64,
            schema_extra={"format": "uuid"},
        ),
        from_: FromTime = None,
        to: ToTime = None,
    ) -> Page[AuditEntry]:
        """The org's audit log, newest first; all filters are optional and combine."""
        paging = LIST.paging(limit, offset)
        actor = None
        if actor_id is not None:
            actor = parse_uuid(actor_id)
            if actor is None:
                raise ApiError(400, "INVALID_QUERY_PARAM", "actor_id must be a UUID", "/actor_id")
        items, total = await audit.page(
            limit=paging.limit,
            offset=paging.offset,
            action=query_text(action, "action"),
            resource_type=query_text(resource_type, "resource_type"),
            resource_id=query_text(resource_id, "resource_id"),
            actor_id=actor,
            start=parse_time(from_, "from"),
            end=parse_time(to, "to"),
        )
        return paging.page(items, total)


class OperatorAuditLogController(Controller):
    """Mounted under the operator router, whose guard checks the operator token."""

    path = "/audit-log"
    tags = ["operator"]
    dependencies = {"audit": provide(OperatorAuditService)}

    @get("/", operation_id="operatorListAuditLog")
    async def list_entries(
        self,
        audit: NamedDependency[OperatorAuditService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        org_id: str | None = Parameter(
            default=None,
            description="only actions on this org (a plan assignment)",
            max_length=64,
            schema_extra={"format": "uuid"},
        ),
        action: str | None = Parameter(
            default=None, description="only this action, e.g. plan.update", max_length=200
        ),
        resource_type: str | None = Parameter(
            default=None,
            description="only this kind of resource: plan, denylist_entry, org",
            max_length=200,
        ),
        resource_id: str | None = Parameter(
            default=None, description="only this resource", max_length=200
        ),
        from_: FromTime = None,
        to: ToTime = None,
    ) -> Page[OperatorAuditEntry]:
        """The operator's actions, newest first, before and after: plans created, changed
        and deleted, deny-list entries added and removed, orgs put on a plan."""
        paging = LIST.paging(limit, offset)
        org = None
        if org_id is not None:
            org = parse_uuid(org_id)
            if org is None:
                raise ApiError(400, "INVALID_QUERY_PARAM", "org_id must be a UUID", "/org_id")
        items, total = await audit.page(
            limit=paging.limit,
            offset=paging.offset,
            org_id=org,
            action=query_text(action, "action"),
            resource_type=query_text(resource_type, "resource_type"),
            resource_id=query_text(resource_id, "resource_id"),
            start=parse_time(from_, "from"),
            end=parse_time(to, "to"),
        )
        return paging.page(items, total)

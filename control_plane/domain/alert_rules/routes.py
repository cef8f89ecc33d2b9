"""/api/v1/alert-rules: create, list, read, edit and delete alert rules."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.ids import parse_uuid
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body, write_source
from control_plane.core.service import provide
from control_plane.domain.targets.service import target_not_found

from .schemas import AlertRule, AlertRuleCreate, AlertRuleUpdate
from .service import AlertRuleService, rule_not_found

LIST = PageSize(default=50, cap=1000)


class AlertRuleController(Controller):
    path = "/alert-rules"
    tags = ["alert-rules"]
    dependencies = {"rules": provide(AlertRuleService)}

    @post(
        "/",
        operation_id="createAlertRule",
        opt=requires("alert_rules:write"),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        rules: NamedDependency[AlertRuleService],
        data: JSONBody[AlertRuleCreate],
    ) -> Response[AlertRule]:
        """Bind channels (the org's), a severity and a threshold to targets by id or by tag."""
        body = await strict_body(request, AlertRuleCreate)
        rule = await rules.create(body, write_source(request))
        return Response(
            rule,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/alert-rules/{rule.id}"},
        )

    @get("/", operation_id="listAlertRules", opt=requires("alert_rules:read"))
    async def list_rules(
        self,
        rules: NamedDependency[AlertRuleService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        target_id: str | None = Parameter(
            default=None,
            max_length=64,
            description="only the rules that apply to this target (by id or by tag)",
        ),
    ) -> Page[AlertRule]:
        """The org's alert rules, oldest first."""
        paging = LIST.paging(limit, offset)
        tid = None
        if target_id is not None:
            tid = parse_uuid(target_id)
            if tid is None:
                raise target_not_found()
        items, total = await rules.page(tid, paging.limit, paging.offset)
        return paging.page(items, total)

    @get("/{rule_id:str}", operation_id="getAlertRule", opt=requires("alert_rules:read"))
    async def get_rule(
        self, rules: NamedDependency[AlertRuleService], rule_id: FromPath[str]
    ) -> AlertRule:
        """One alert rule."""
        return await rules.get(path_uuid(rule_id, rule_not_found()))

    @patch("/{rule_id:str}", operation_id="updateAlertRule", opt=requires("alert_rules:write"))
    async def update(
        self,
        request: Request[Any, Any, Any],
        rules: NamedDependency[AlertRuleService],
        rule_id: FromPath[str],
        data: JSONBody[AlertRuleUpdate],
    ) -> AlertRule:
        """Edit any field; omitted fields are left alone."""
        rid = path_uuid(rule_id, rule_not_found())
        body = await strict_body(request, AlertRuleUpdate)
        return await rules.update(rid, body, write_source(request))

    @delete(
        "/{rule_id:str}",
        operation_id="deleteAlertRule",
        opt=requires("alert_rules:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_rule(
        self, rules: NamedDependency[AlertRuleService], rule_id: FromPath[str]
    ) -> None:
        """Delete an alert rule."""
        await rules.delete(path_uuid(rule_id, rule_not_found()))

"""/api/v1/targets/test and /api/v1/targets/{id}/check-now: one check now, on a real agent."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from control_plane.core.observability.openapi import errors
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide
from control_plane.domain.targets.service import target_not_found

from .schemas import CheckNowResponse, TestRequest, TestResponse
from .service import OnDemandService

# The answers particular to running a check now (the envelope's ``error.code`` in brackets).
RESPONSES = errors(
    s404="[REGION_NOT_FOUND] the region is restricted to other orgs; [TARGET_NOT_FOUND]",
    s422="[HEARTBEAT_HAS_NO_REGIONS] a heartbeat check is not run by agents",
    s503="[PROBE_UNAVAILABLE] no agent is serving a region the check must run from",
    s504="[PROBE_TIMEOUT] no result came back within the check's timeout + 5 s",
)


class OnDemandController(Controller):
    path = "/targets"
    tags = ["targets"]
    dependencies = {"ondemand": provide(OnDemandService)}

    @post(
        "/test",
        operation_id="testTarget",
        opt=requires("targets:write"),
        status_code=HTTP_200_OK,
        responses=RESPONSES,
    )
    async def test(
        self,
        request: Request[Any, Any, Any],
        ondemand: NamedDependency[OnDemandService],
        data: JSONBody[TestRequest],
    ) -> TestResponse:
        """Run one check from a raw spec on an agent of ``region`` (default ``default``) and
        return its result; nothing is stored. The spec is validated exactly as
        ``POST /targets`` validates it (same codes, ``SSRF_BLOCKED`` included). 503
        ``PROBE_UNAVAILABLE`` when no agent serves the region, 504 ``PROBE_TIMEOUT`` when no
        result comes back within the check's timeout plus a few seconds."""
        return await ondemand.test(await strict_body(request, TestRequest))

    @post(
        "/{target_id:str}/check-now",
        operation_id="checkTargetNow",
        opt=requires("targets:write"),
        status_code=HTTP_200_OK,
        responses=RESPONSES,
    )
    async def check_now(
        self, ondemand: NamedDependency[OnDemandService], target_id: FromPath[str]
    ) -> CheckNowResponse:
        """Run the target's check now, with its stored credentials, on an agent of each of its
        regions; the results are stored like scheduled ones (at the request time, off the slot
        grid) and counted by the incident engine with the next scheduled result. 503
        ``PROBE_UNAVAILABLE`` when a region has no agent serving it, 504 ``PROBE_TIMEOUT`` when a
        result does not come back in time (a late one is still stored)."""
        return await ondemand.check_now(path_uuid(target_id, target_not_found()))

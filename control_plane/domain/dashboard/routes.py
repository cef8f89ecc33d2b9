"""/api/v1/dashboard: the org's rollup."""

from __future__ import annotations

from typing import Any, cast

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from control_plane.core.permissions import requires
from control_plane.core.service import provide

from .schemas import DashboardSummary
from .service import DashboardService


class DashboardController(Controller):
    path = "/dashboard"
    tags = ["dashboard"]
    dependencies = {"dashboard": provide(DashboardService)}

    @get("/summary", operation_id="getDashboardSummary", opt=requires("targets:read"))
    async def summary(
        self, dashboard: NamedDependency[DashboardService]
    ) -> Response[DashboardSummary]:
        """Targets, current status, the last 24 h and the system's figures for the org; cached
        5 seconds per org (``Cache-Control: private, max-age=5``)."""
        body = await dashboard.summary_json()
        response: Response[Any] = Response(content=body, media_type="application/json")
        return cast(Response[DashboardSummary], response)

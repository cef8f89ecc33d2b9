"""The one app factory: ``create_app(settings)``. No side effects at import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from redis.asyncio import Redis

from control_plane.core.allow import allow_header_middleware
from control_plane.core.auth import (
    agent_guard,
    authenticated_agent,
    authenticated_org,
    operator_guard,
    org_guard,
)
from control_plane.core.cache_control import cache_control_middleware
from control_plane.core.cors import cors_middleware
from control_plane.core.errors import exception_handlers
from control_plane.core.health import healthz, readyz
from control_plane.core.input_limits import input_limits_middleware, json_body_guard
from control_plane.core.observability import (
    OPENAPI_PATH,
    EnvelopeJsonRenderPlugin,
    instrument,
    openapi_router,
)
from control_plane.core.observability.monitoring import MonitoringMetrics, refresher
from control_plane.core.observability.openapi import StrictStructSchemaPlugin
from control_plane.core.permissions import permission_guard
from control_plane.core.ratelimit import headers_middleware
from control_plane.core.state import Resources
from control_plane.db.pool import make_pool
from control_plane.domain.abuse.routes import OperatorDenylistController
from control_plane.domain.agent_api.routes import AgentController
from control_plane.domain.agent_api.wakeups import Wakeups
from control_plane.domain.agents.routes import OperatorAgentController
from control_plane.domain.alert_rules.routes import AlertRuleController
from control_plane.domain.api_keys.routes import ApiKeyController
from control_plane.domain.audit.routes import AuditLogController, OperatorAuditLogController
from control_plane.domain.dashboard.routes import DashboardController
from control_plane.domain.events.hub import close_hub
from control_plane.domain.events.routes import EventStreamController
from control_plane.domain.events.websocket import live_stream
from control_plane.domain.heartbeats.routes import HeartbeatController
from control_plane.domain.incidents.routes import IncidentController
from control_plane.domain.maintenance.routes import MaintenanceController
from control_plane.domain.notifications.routes import (
    ChannelController,
    ChannelVerificationController,
    IncidentNotificationController,
)
from control_plane.domain.notifications.whatsapp_link import WhatsAppHookController
from control_plane.domain.ondemand.routes import OnDemandController
from control_plane.domain.plans.routes import OperatorPlanController
from control_plane.domain.public.limits import public_limits_middleware
from control_plane.domain.public.routes import (
    PublicPageController,
    ReferenceAliasController,
    ReferenceApiAliasController,
    public_api_router,
)
from control_plane.domain.public.templates import template_config
from control_plane.domain.regions.routes import (
    OperatorGrantController,
    OperatorRegionController,
    RegionCatalogController,
)
from control_plane.domain.results.routes import TargetResultsController
from control_plane.domain.shares.routes import ShareController
from control_plane.domain.status_pages.routes import StatusPageController
from control_plane.domain.targets.fleet_routes import TagController, TargetFleetController
from control_plane.domain.targets.routes import TargetController
from control_plane.domain.users.routes import (
    AccountController,
    AuthController,
    InvitationController,
    MemberController,
)
from control_plane.domain.webhooks.routes import WebhookController
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings, get_settings

API_VERSION = "0.1.0"


def _lifespan() -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Read at start-up, not captured at construction: one built app can be started again
        # with other settings (the test suite builds one per worker instead of one per test).
        settings: Settings = app.state.settings
        pool = make_pool(settings.database)
        await pool.open(wait=False)
        redis = Redis.from_url(settings.redis.url, decode_responses=False)
        wakeups = Wakeups(settings.database.url)
        monitoring = MonitoringMetrics(app.state.metrics, settings.target_metrics)
        app.state.resources = Resources(
            settings=settings,
            db=pool,
            redis=redis,
            sealer=Sealer(settings.security.sealing_keys, settings.security.primary_key_id),
            queue=ArqRedis.from_url(settings.redis.url),
            wakeups=wakeups,
            monitoring=monitoring,
        )
        # Everything built so far lives as long as the process: keep it out of the collector's
        # full passes, which otherwise rescan it while a large page (10,000 result structs) is
        # being built and stall the requests in flight (and were 13 % of the API's CPU samples
        # while leasing and ingesting, issue 5).
        gc.freeze()
        try:
            draining = app.state.resources.draining
            async with refresher(monitoring, pool, redis), wakeups.running():
                with draining.on_signals():
                    yield
        finally:
            await redis.aclose()
            if app.state.resources.queue is not None:
                await app.state.resources.queue.aclose()
            await pool.close()

    return lifespan


def tenant_router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[
            TargetController,
            TargetFleetController,
            TagController,
            DashboardController,
            OnDemandController,
            TargetResultsController,
            IncidentController,
            RegionCatalogController,
            MaintenanceController,
            AlertRuleController,
            WebhookController,
            EventStreamController,
            ChannelController,
            IncidentNotificationController,
            StatusPageController,
            ShareController,
            ApiKeyController,
            AuditLogController,
            MemberController,
            InvitationController,
        ],
        guards=[org_guard, permission_guard, json_body_guard],
        dependencies={"org": Provide(authenticated_org, sync_to_thread=False)},
        security=[{"bearer": []}],
    )


def operator_router() -> Router:
    return Router(
        path="/operator",
        route_handlers=[
            OperatorRegionController,
            OperatorGrantController,
            OperatorAgentController,
            OperatorPlanController,
            OperatorDenylistController,
            OperatorAuditLogController,
        ],
        guards=[operator_guard, json_body_guard],
        security=[{"operator": []}],
        tags=["operator"],
    )


def auth_router() -> Router:
    """Sign-in, sessions, invitations and password resets: no bearer (the cookie or the mailed
    token is the credential)."""
    return Router(
        path="/api/auth",
        route_handlers=[AuthController, AccountController],
        guards=[json_body_guard],
        tags=["auth"],
    )


def agent_router() -> Router:
    return Router(
        path="/api/agent",
        route_handlers=[AgentController],
        guards=[agent_guard, json_body_guard],
        dependencies={"agent": Provide(authenticated_agent, sync_to_thread=False)},
        security=[{"agent": []}],
    )


def openapi_config() -> OpenAPIConfig:
    from litestar.openapi.spec import Components, SecurityScheme

    return OpenAPIConfig(
        title="Vigil API",
        version=API_VERSION,
        path=OPENAPI_PATH,
        render_plugins=[EnvelopeJsonRenderPlugin()],
        openapi_router=openapi_router(OPENAPI_PATH),
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="API token (vgl_…) of an org"
                ),
                "operator": SecurityScheme(
                    type="http", scheme="bearer", description="VIGIL_OPERATOR_ADMIN_TOKEN"
                ),
                "agent": SecurityScheme(
                    type="http", scheme="bearer", description="agent token (sm_agent_…)"
                ),
            }
        ),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            tenant_router(),
            operator_router(),
            agent_router(),
            # No auth: the token in the path is the credential.
            HeartbeatController,
            # Authenticates with the API token in its first message (or header).
            live_stream,
            ChannelVerificationController,
            # No bearer: Meta's signature with the app secret is the credential.
            WhatsAppHookController,
            # No auth, none of the tenant guards: published status pages and share links.
            public_api_router(),
            PublicPageController,
            ReferenceAliasController,
            ReferenceApiAliasController,
            auth_router(),
        ],
        template_config=template_config(),
        lifespan=[_lifespan()],
        on_shutdown=[close_hub],
        exception_handlers=exception_handlers(),
        middleware=[
            cors_middleware(settings.cors),
            cache_control_middleware,
            public_limits_middleware,
            headers_middleware,
            allow_header_middleware,
            input_limits_middleware,
        ],
        openapi_config=openapi_config(),
        plugins=[StrictStructSchemaPlugin()],
        logging_config=None,
        debug=False,
    )
    app.state.settings = settings
    return instrument(app, metrics_token=settings.security.metrics_token)

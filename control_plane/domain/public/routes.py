"""The public surface: ``/api/public/v1/pages/{slug}/…`` (JSON, RSS, SVG, the logo) and the
server-rendered pages ``/status/{slug}``, ``/status/{slug}/incidents/{id}`` and ``/m/{token}``.

No authentication and none of the tenant guards: these routers are mounted beside ``/api/v1``,
never under it. Every answer carries ``Cache-Control: public, max-age=10,
stale-while-revalidate=30`` (a reverse proxy in front may serve repeats itself).
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Template

from control_plane.core.cache_control import PUBLIC
from control_plane.core.errors import ApiError
from control_plane.core.ids import parse_uuid
from control_plane.core.pagination import Offset, PageSize
from control_plane.core.service import provide

from . import cache, render
from .schemas import (
    ComponentHistory,
    MaintenanceList,
    PublicIncident,
    PublicIncidentPage,
    PublicStatus,
)
from .service import (
    HISTORY_DAYS,
    PublicService,
    component_not_found,
    history_of,
    incident_not_found,
    share_not_found,
)
from .views import incident_context, share_context

INCIDENTS = PageSize(default=20, cap=100)
Slug = Annotated[str, Parameter(description="the page's slug", max_length=50)]
ComponentQuery = Annotated[
    str | None,
    Parameter(
        description="a component's id (a monitor curated onto the page)",
        max_length=64,
        required=False,
    ),
]


def _answer(
    request: Request[Any, Any, Any], r: cache.Rendered, headers: dict[str, str] | None = None
) -> Response[Any]:
    """A rendered answer with its ETag; 304 (no body) when the client already holds it."""
    h = {**(headers or {}), "ETag": r.etag}
    if cache.not_modified(request.headers.get("if-none-match"), r.etag):
        return Response(b"", status_code=304, headers=h, media_type=r.media_type)
    return Response(r.body, media_type=r.media_type, headers=h)


def _variant(fragment: str | None) -> str:
    return "fragment" if fragment in ("1", "true") else "html"


def _component(value: str) -> Any:
    parsed = parse_uuid(value)
    if parsed is None:
        raise component_not_found()
    return parsed


class PublicApiController(Controller):
    path = "/pages/{slug:str}"
    tags = ["public"]
    dependencies = {"public": provide(PublicService)}

    @get("/status", operation_id="publicStatus")
    async def status(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        slug: FromPath[str],
    ) -> Response[PublicStatus]:
        """Overall state, components, active incidents and maintenance of a published page
        (with an ``ETag``: ``If-None-Match`` answers 304 while it holds)."""
        # The JSON is encoded once per page and cache period; the annotation documents it.
        return cast("Response[PublicStatus]", _answer(request, await public.rendered(slug, "json")))

    @get("/components/{component_id:str}/history", operation_id="publicComponentHistory")
    async def history(
        self,
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        component_id: FromPath[str],
        days: int = Parameter(default=HISTORY_DAYS, ge=1, le=HISTORY_DAYS),
    ) -> ComponentHistory:
        """A component's uptime per UTC day over the last ``days`` days (at most 90)."""
        return await public.history(slug, _component(component_id), days)

    @get("/incidents", operation_id="publicIncidents")
    async def incidents(
        self,
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        limit: Annotated[int | None, INCIDENTS.limit] = None,
        offset: Offset = None,
    ) -> PublicIncidentPage:
        """The page's incidents, newest first."""
        paging = INCIDENTS.paging(limit, offset)
        return await public.incidents(slug, limit=paging.limit, offset=paging.offset)

    @get("/incidents/{incident_id:str}", operation_id="publicIncident")
    async def incident(
        self,
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        incident_id: FromPath[str],
    ) -> PublicIncident:
        """One incident of the page with its update timeline (newest first)."""
        iid = parse_uuid(incident_id)
        if iid is None:
            raise incident_not_found()
        return await public.incident(slug, iid)

    @get("/incidents.rss", operation_id="publicIncidentsRss", media_type="application/rss+xml")
    async def incidents_rss(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        slug: FromPath[str],
    ) -> Response[str]:
        """RSS 2.0 feed of the page's recent incidents."""
        snap = await public.snapshot(slug)
        recent = await public.incidents(slug, limit=50, offset=0)
        page = snap.status.page
        body = render.rss(
            title=f"{page.name}: incidents",
            link=page.page_url,
            description=page.description,
            incidents=recent.items,
            base=f"{public.public_url}/api/public/v1/pages/{page.slug}/incidents.rss",
        )
        return Response(body, media_type="application/rss+xml; charset=utf-8")

    @get("/maintenance", operation_id="publicMaintenance")
    async def maintenance(
        self, public: NamedDependency[PublicService], slug: FromPath[str]
    ) -> MaintenanceList:
        """Active and upcoming maintenance windows that cover the page's components."""
        return MaintenanceList(items=(await public.snapshot(slug)).status.maintenance)

    @get("/badge.svg", operation_id="publicStatusBadge", media_type="image/svg+xml")
    async def badge(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        component: ComponentQuery = None,
    ) -> Response[str]:
        """An SVG badge of the page's overall state, or of one ``component``."""
        if component is None:
            return cast("Response[str]", _answer(request, await public.rendered(slug, "badge")))
        snap = await public.snapshot(slug)
        cid = _component(component)
        comp = next((c for c in snap.status.components if c.id == cid), None)
        if comp is None:
            raise component_not_found()
        svg = render.status_badge(comp.name, comp.status)
        return Response(svg, media_type="image/svg+xml; charset=utf-8")

    @get("/uptime.svg", operation_id="publicUptimeBadge", media_type="image/svg+xml")
    async def uptime_badge(
        self,
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        component: ComponentQuery = None,
        days: int = Parameter(default=30, ge=1, le=HISTORY_DAYS),
    ) -> Response[str]:
        """An SVG badge of the uptime percentage over ``days`` days: one component's, or the
        mean of the page's components."""
        snap = await public.snapshot(slug)
        if component is None:
            values = [
                h.uptime_pct
                for h in [history_of(snap, c.id, days) for c in snap.status.components]
                if h.uptime_pct is not None
            ]
            value = round(sum(values) / len(values), 3) if values else None
            label = f"uptime {days}d"
        else:
            hist = history_of(snap, _component(component), days)
            value, label = hist.uptime_pct, f"{hist.component.name} {days}d"
        return Response(
            render.uptime_badge(label, value), media_type="image/svg+xml; charset=utf-8"
        )

    @get("/logo", operation_id="publicLogo", media_type="image/png")
    async def logo(
        self, public: NamedDependency[PublicService], slug: FromPath[str]
    ) -> Response[bytes]:
        """The page's logo, with its image type."""
        data, content_type = await public.logo(slug)
        return Response(
            data,
            media_type=content_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
            },
        )


def public_api_router() -> Router:
    return Router(
        path="/api/public/v1",
        route_handlers=[PublicApiController],
        tags=["public"],
    )


# The pages' own CSP: everything from this origin, inline styles (the page's custom CSS) and the
# one small inline script that shows times in the visitor's zone.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'unsafe-inline'; frame-ancestors *; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": PUBLIC,
}


def _not_found_page(message: str) -> Template:
    return Template(
        template_name="not_found.html",
        context={"page": None, "message": message},
        status_code=404,
        headers=PAGE_HEADERS,
    )


# Web pages, not API operations: left out of the OpenAPI document (tests/…/test_openapi.py
# lists them as HTML_PAGES).


async def _incident_html(
    public: PublicService, incident_id: str, *, slug: str | None = None, host: str = ""
) -> Template:
    """One incident's page of the page ``slug`` (or the one whose verified custom domain is
    ``host``); the not-found page for anything else."""
    try:
        if slug is None:
            slug = await public.slug_for_host_cached(host)
        snap = await public.snapshot(slug)
        iid = parse_uuid(incident_id)
        if iid is None:
            raise incident_not_found()
        incident = await public.incident(slug, iid)
    except ApiError:
        return _not_found_page("There is no such incident on this page.")
    return Template(
        template_name="incident.html",
        context=incident_context(snap, incident),
        headers=PAGE_HEADERS,
    )


class PublicPageController(Controller):
    path = "/"
    include_in_schema = False
    dependencies = {"public": provide(PublicService)}

    @get(["/", "/status"], media_type="text/html")
    async def custom_domain_page(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        fragment: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """A page's verified custom domain (``Host: status.example.com``) serves it at ``/`` and
        at the reference's ``/status``."""
        try:
            slug = await public.slug_for_host_cached(request.headers.get("host", ""))
            r = await public.rendered(slug, _variant(fragment))
        except ApiError:
            return _not_found_page("There is no status page here.")
        return _answer(request, r, PAGE_HEADERS)

    @get(
        "/status/{slug:str}",
        media_type="text/html",
    )
    async def status_page(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        fragment: FromQuery[str | None] = None,
    ) -> Response[Any]:
        try:
            r = await public.rendered(slug, _variant(fragment))
        except ApiError:
            return _not_found_page("There is no status page here.")
        return _answer(request, r, PAGE_HEADERS)

    @get(
        "/status/{slug:str}/incidents/{incident_id:str}",
        media_type="text/html",
    )
    async def incident_page(
        self,
        public: NamedDependency[PublicService],
        slug: FromPath[str],
        incident_id: FromPath[str],
    ) -> Template:
        return await _incident_html(public, incident_id, slug=slug)

    @get(
        "/m/{token:str}",
        media_type="text/html",
    )
    async def share_page(
        self, public: NamedDependency[PublicService], token: FromPath[str]
    ) -> Template:
        try:
            monitor = await public.shared(token)
        except ApiError:
            return _not_found_page("This link does not exist, was revoked or has expired.")
        return Template(
            template_name="share.html",
            context=share_context(monitor),
            # A capability URL: no shared cache keeps it; revoking it takes effect at once.
            headers={**PAGE_HEADERS, "X-Robots-Tag": "noindex", "Cache-Control": "no-store"},
        )


__all__ = [
    "PublicApiController",
    "PublicPageController",
    "ReferenceAliasController",
    "ReferenceApiAliasController",
    "public_api_router",
    "share_not_found",
]


class ReferenceAliasController(Controller):
    """The reference's one-page-per-deployment pages, on a page's verified custom domain:
    ``Host: status.example.com`` makes ``/status/incidents/{id}`` that page's (as
    ``/status/{slug}/incidents/{id}`` is; its ``/status`` is ``PublicPageController``'s); any
    other Host: the not-found page (there is no deployment-wide default page). The JSON twins:
    ``ReferenceApiAliasController``."""

    path = "/"
    include_in_schema = False
    dependencies = {"public": provide(PublicService)}

    @get("/status/incidents/{incident_id:str}", media_type="text/html")
    async def incident_page(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        incident_id: FromPath[str],
    ) -> Template:
        return await _incident_html(public, incident_id, host=request.headers.get("host", ""))


class ReferenceApiAliasController(Controller):
    """The reference's ``/api/public/v1/{status,incidents,…}`` (one page per deployment): the
    page whose verified custom domain is the request's Host; any other Host is 404
    ``PAGE_NOT_FOUND``."""

    path = "/api/public/v1"
    tags = ["public"]
    dependencies = {"public": provide(PublicService)}

    @get("/status", operation_id="publicStatusOnDomain")
    async def status(
        self, request: Request[Any, Any, Any], public: NamedDependency[PublicService]
    ) -> Response[PublicStatus]:
        """``/pages/{slug}/status`` of the page whose verified custom domain is the Host."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        return cast("Response[PublicStatus]", _answer(request, await public.rendered(slug, "json")))

    @get("/components/{component_id:str}/history", operation_id="publicComponentHistoryOnDomain")
    async def history(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        component_id: FromPath[str],
        days: int = Parameter(default=HISTORY_DAYS, ge=1, le=HISTORY_DAYS),
    ) -> ComponentHistory:
        """``/pages/{slug}/components/{id}/history`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        return await public.history(slug, _component(component_id), days)

    @get("/incidents", operation_id="publicIncidentsOnDomain")
    async def incidents(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        limit: Annotated[int | None, INCIDENTS.limit] = None,
        offset: Offset = None,
    ) -> PublicIncidentPage:
        """``/pages/{slug}/incidents`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        paging = INCIDENTS.paging(limit, offset)
        return await public.incidents(slug, limit=paging.limit, offset=paging.offset)

    @get("/incidents/{incident_id:str}", operation_id="publicIncidentOnDomain")
    async def incident(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        incident_id: FromPath[str],
    ) -> PublicIncident:
        """``/pages/{slug}/incidents/{id}`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        iid = parse_uuid(incident_id)
        if iid is None:
            raise incident_not_found()
        return await public.incident(slug, iid)

    @get(
        "/incidents.rss",
        operation_id="publicIncidentsRssOnDomain",
        media_type="application/rss+xml",
    )
    async def incidents_rss(
        self, request: Request[Any, Any, Any], public: NamedDependency[PublicService]
    ) -> Response[str]:
        """``/pages/{slug}/incidents.rss`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        return await PublicApiController.incidents_rss.fn(self, request, public, slug)  # type: ignore[no-any-return]

    @get("/maintenance", operation_id="publicMaintenanceOnDomain")
    async def maintenance(
        self, request: Request[Any, Any, Any], public: NamedDependency[PublicService]
    ) -> MaintenanceList:
        """``/pages/{slug}/maintenance`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        return MaintenanceList(items=(await public.snapshot(slug)).status.maintenance)

    @get("/badge.svg", operation_id="publicStatusBadgeOnDomain", media_type="image/svg+xml")
    async def badge(
        self,
        request: Request[Any, Any, Any],
        public: NamedDependency[PublicService],
        component: ComponentQuery = None,
    ) -> Response[str]:
        """``/pages/{slug}/badge.svg`` of the custom domain's page."""
        slug = await public.slug_for_host_cached(request.headers.get("host", ""))
        return await PublicApiController.badge.fn(self, request, public, slug, component)  # type: ignore[no-any-return]

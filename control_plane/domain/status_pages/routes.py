"""/api/v1/status-pages: an org's public pages, their branding, logo and components."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .logo import LogoUploadOperation, read_logo
from .schemas import (
    Component,
    ComponentAdd,
    ComponentList,
    ComponentOrder,
    ComponentUpdate,
    DomainClaim,
    DomainStatus,
    StatusPage,
    StatusPageCreate,
    StatusPageUpdate,
)
from .service import StatusPageService, component_not_found, page_not_found

LIST = PageSize(default=50, cap=200)
QUOTA = "[QUOTA_EXCEEDED] the org's plan allows no more (details.quota names which)"


def _component_target(target_id: str) -> Any:
    return path_uuid(target_id, component_not_found())


class StatusPageController(Controller):
    path = "/status-pages"
    tags = ["status pages"]
    dependencies = {"pages": provide(StatusPageService)}

    @post(
        "/",
        operation_id="createStatusPage",
        opt=requires("status_pages:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(s409="[SLUG_TAKEN] another page has this slug", s422=QUOTA),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        data: JSONBody[StatusPageCreate],
    ) -> Response[StatusPage]:
        """Create a page (unpublished unless ``published: true``); the slug is global."""
        page = await pages.create(await strict_body(request, StatusPageCreate))
        return Response(
            page,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/status-pages/{page.id}"},
        )

    @get("/", operation_id="listStatusPages", opt=requires("status_pages:read"))
    async def list_pages(
        self,
        pages: NamedDependency[StatusPageService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[StatusPage]:
        """This org's pages, oldest first."""
        paging = LIST.paging(limit, offset)
        items, total = await pages.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @get("/{page_id:str}", operation_id="getStatusPage", opt=requires("status_pages:read"))
    async def get_page(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> StatusPage:
        """One page, with its live URL and logo URL."""
        return await pages.get(path_uuid(page_id, page_not_found()))

    @patch(
        "/{page_id:str}",
        operation_id="updateStatusPage",
        opt=requires("status_pages:write"),
        responses=errors(s409="[SLUG_TAKEN] another page has this slug"),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        data: JSONBody[StatusPageUpdate],
    ) -> StatusPage:
        """Rename, change the slug, publish or unpublish, edit the branding."""
        pid = path_uuid(page_id, page_not_found())
        return await pages.update(pid, await strict_body(request, StatusPageUpdate))

    @delete(
        "/{page_id:str}",
        operation_id="deleteStatusPage",
        opt=requires("status_pages:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_page(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> None:
        """Delete the page and its components (the monitors stay)."""
        await pages.delete(path_uuid(page_id, page_not_found()))

    @post(
        "/{page_id:str}/logo",
        operation_id="uploadStatusPageLogo",
        operation_class=LogoUploadOperation,
        opt=requires("status_pages:write"),
        status_code=200,
        responses=errors(
            s413="[LOGO_TOO_LARGE] the logo is over 256 KiB",
            s422="[UNSUPPORTED_LOGO_TYPE] not a PNG, JPEG, GIF or WebP image",
        ),
    )
    async def upload_logo(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
    ) -> StatusPage:
        """Upload the page's logo: ``multipart/form-data`` with the image in the ``file`` field
        (PNG, JPEG, GIF or WebP, at most 256 KiB)."""
        pid = path_uuid(page_id, page_not_found())
        data, content_type = await read_logo(request)
        return await pages.set_logo(pid, data, content_type)

    @delete(
        "/{page_id:str}/logo",
        operation_id="deleteStatusPageLogo",
        opt=requires("status_pages:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_logo(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> None:
        """Remove the page's logo."""
        await pages.set_logo(path_uuid(page_id, page_not_found()), None, None)

    @put(
        "/{page_id:str}/domain",
        operation_id="claimStatusPageDomain",
        opt=requires("status_pages:write"),
        responses=errors(s409="[DOMAIN_TAKEN] another page claimed this host name"),
    )
    async def claim_domain(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        data: JSONBody[DomainClaim],
    ) -> DomainStatus:
        """Claim a host name for the page; answers the TXT record that proves it."""
        pid = path_uuid(page_id, page_not_found())
        body = await strict_body(request, DomainClaim)
        return await pages.claim_domain(pid, body.domain)

    @get(
        "/{page_id:str}/domain",
        operation_id="getStatusPageDomain",
        opt=requires("status_pages:read"),
    )
    async def get_domain(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> DomainStatus:
        """The page's custom domain, its TXT record and whether it is verified."""
        return await pages.domain_status(path_uuid(page_id, page_not_found()))

    @post(
        "/{page_id:str}/domain/verify",
        operation_id="verifyStatusPageDomain",
        opt=requires("status_pages:write"),
        status_code=200,
        responses=errors(s422="[DOMAIN_NOT_VERIFIED] the TXT record is not there (yet)"),
    )
    async def verify_domain(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> DomainStatus:
        """Look the TXT record up now; once found the page is served on that Host."""
        return await pages.verify_domain(path_uuid(page_id, page_not_found()))

    @delete(
        "/{page_id:str}/domain",
        operation_id="releaseStatusPageDomain",
        opt=requires("status_pages:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def release_domain(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> None:
        """Give the host name up."""
        await pages.release_domain(path_uuid(page_id, page_not_found()))

    @get(
        "/{page_id:str}/components",
        operation_id="listStatusPageComponents",
        opt=requires("status_pages:read"),
    )
    async def list_components(
        self, pages: NamedDependency[StatusPageService], page_id: FromPath[str]
    ) -> ComponentList:
        """The monitors curated onto the page, in page order."""
        return ComponentList(items=await pages.components(path_uuid(page_id, page_not_found())))

    @post(
        "/{page_id:str}/components",
        operation_id="addStatusPageComponent",
        opt=requires("status_pages:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s409="[COMPONENT_ALREADY_ON_PAGE] the monitor is on the page already",
            s422=QUOTA + "; [UNKNOWN_TARGET] no target of this org has this id",
        ),
    )
    async def add_component(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        data: JSONBody[ComponentAdd],
    ) -> Component:
        """Curate a monitor of the org onto the page."""
        pid = path_uuid(page_id, page_not_found())
        return await pages.add_component(pid, await strict_body(request, ComponentAdd))

    @post(
        "/{page_id:str}/components/reorder",
        operation_id="reorderStatusPageComponents",
        opt=requires("status_pages:write"),
        status_code=200,
    )
    async def reorder(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        data: JSONBody[ComponentOrder],
    ) -> ComponentList:
        """Set the order of the components: every component's target id, once each."""
        pid = path_uuid(page_id, page_not_found())
        body = await strict_body(request, ComponentOrder)
        return ComponentList(items=await pages.reorder(pid, body.target_ids))

    @patch(
        "/{page_id:str}/components/{target_id:str}",
        operation_id="updateStatusPageComponent",
        opt=requires("status_pages:write"),
    )
    async def update_component(
        self,
        request: Request[Any, Any, Any],
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        target_id: FromPath[str],
        data: JSONBody[ComponentUpdate],
    ) -> Component:
        """Edit the component's public name, description, group or position (null clears)."""
        pid = path_uuid(page_id, page_not_found())
        tid = _component_target(target_id)
        return await pages.update_component(pid, tid, await strict_body(request, ComponentUpdate))

    @delete(
        "/{page_id:str}/components/{target_id:str}",
        operation_id="removeStatusPageComponent",
        opt=requires("status_pages:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def remove_component(
        self,
        pages: NamedDependency[StatusPageService],
        page_id: FromPath[str],
        target_id: FromPath[str],
    ) -> None:
        """Take the monitor off the page (the monitor stays)."""
        pid = path_uuid(page_id, page_not_found())
        await pages.remove_component(pid, _component_target(target_id))

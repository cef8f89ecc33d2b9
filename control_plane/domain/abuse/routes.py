"""/operator/abuse/denylist: the domains and URL patterns no tenant may point a check at."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .schemas import DenyEntry, DenyEntryCreate
from .service import DenylistService, entry_not_found

LIST = PageSize(default=100, cap=1000)


class OperatorDenylistController(Controller):
    path = "/abuse/denylist"
    tags = ["operator"]
    dependencies = {"denylist": provide(DenylistService)}

    @post(
        "/",
        operation_id="operatorAddDenylistEntry",
        status_code=HTTP_201_CREATED,
        responses=errors(s409="[DENYLIST_ENTRY_EXISTS] already listed"),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        denylist: NamedDependency[DenylistService],
        data: JSONBody[DenyEntryCreate],
    ) -> Response[DenyEntry]:
        """List a domain (and everything under it) or a URL pattern; applies to the next
        create, update or test of a target."""
        entry = await denylist.create(await strict_body(request, DenyEntryCreate))
        return Response(entry, status_code=HTTP_201_CREATED)

    @get("/", operation_id="operatorListDenylist")
    async def list_entries(
        self,
        denylist: NamedDependency[DenylistService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[DenyEntry]:
        """The deny-list, by kind and value."""
        paging = LIST.paging(limit, offset)
        items, total = await denylist.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @delete(
        "/{entry_id:str}",
        operation_id="operatorDeleteDenylistEntry",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_entry(
        self, denylist: NamedDependency[DenylistService], entry_id: FromPath[str]
    ) -> None:
        """Take an entry off the list."""
        await denylist.delete(path_uuid(entry_id, entry_not_found()))

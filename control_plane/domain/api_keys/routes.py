"""/api/v1/api-keys: create (shown once), list (masked), get, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .schemas import ApiKey, ApiKeyCreate, ApiKeyCreated
from .service import ApiKeyService, key_not_found

LIST = PageSize(default=50, cap=500)


class ApiKeyController(Controller):
    path = "/api-keys"
    tags = ["api-keys"]
    dependencies = {"keys": provide(ApiKeyService)}

    @post(
        "/",
        operation_id="createApiKey",
        opt=requires("api_keys:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s403="[SCOPE_EXCEEDS_CREATOR] the new key would hold more than the caller's key"
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        keys: NamedDependency[ApiKeyService],
        data: JSONBody[ApiKeyCreate],
    ) -> Response[ApiKeyCreated]:
        """Create a key. The whole key is in this answer only: store it now."""
        body = await strict_body(request, ApiKeyCreate)
        created = await keys.create(body)
        return Response(
            created,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/api-keys/{created.id}"},
        )

    @get("/", operation_id="listApiKeys", opt=requires("api_keys:read"))
    async def list_keys(
        self,
        keys: NamedDependency[ApiKeyService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
        include_revoked: bool = Parameter(default=False, description="list revoked keys too"),
    ) -> Page[ApiKey]:
        """The org's keys, newest first, masked."""
        paging = LIST.paging(limit, offset)
        items, total = await keys.list_page(
            limit=paging.limit, offset=paging.offset, include_revoked=include_revoked
        )
        return paging.page(items, total)

    @get("/{key_id:str}", operation_id="getApiKey", opt=requires("api_keys:read"))
    async def get_key(self, keys: NamedDependency[ApiKeyService], key_id: FromPath[str]) -> ApiKey:
        """One key, masked."""
        return await keys.get(path_uuid(key_id, key_not_found()))

    @delete(
        "/{key_id:str}",
        operation_id="revokeApiKey",
        opt=requires("api_keys:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke(self, keys: NamedDependency[ApiKeyService], key_id: FromPath[str]) -> None:
        """Revoke a key: its next request is a 401, on every replica."""
        await keys.revoke(path_uuid(key_id, key_not_found()))

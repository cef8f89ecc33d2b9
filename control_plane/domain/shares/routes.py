"""/api/v1/targets/{id}/shares: mint, list and revoke a monitor's read-only share links."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.observability.openapi import errors
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide
from control_plane.domain.targets.service import target_not_found

from .schemas import MonitorShare, ShareCreate, ShareList
from .service import ShareService, share_not_found


class ShareController(Controller):
    path = "/targets/{target_id:str}/shares"
    tags = ["share links"]
    dependencies = {"shares": provide(ShareService)}

    @post(
        "/",
        operation_id="createShare",
        opt=requires("targets:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s422="[QUOTA_EXCEEDED] max_share_links_per_monitor or max_shared_monitors "
            "(details.quota names which)"
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        shares: NamedDependency[ShareService],
        target_id: FromPath[str],
        data: JSONBody[ShareCreate],
    ) -> Response[MonitorShare]:
        """Mint a share link; the answer holds the token (the link is ``/m/{token}``)."""
        tid = path_uuid(target_id, target_not_found())
        share = await shares.create(tid, await strict_body(request, ShareCreate))
        return Response(share, status_code=HTTP_201_CREATED)

    @get("/", operation_id="listShares", opt=requires("targets:read"))
    async def list_shares(
        self, shares: NamedDependency[ShareService], target_id: FromPath[str]
    ) -> ShareList:
        """The monitor's live share links; ``token`` and ``share_url`` only for a caller with
        targets:write (null otherwise)."""
        return ShareList(items=await shares.list(path_uuid(target_id, target_not_found())))

    @delete(
        "/{share_id:str}",
        operation_id="revokeShare",
        opt=requires("targets:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke(
        self,
        shares: NamedDependency[ShareService],
        target_id: FromPath[str],
        share_id: FromPath[str],
    ) -> None:
        """Revoke a link: it 404s on its next request."""
        tid = path_uuid(target_id, target_not_found())
        await shares.revoke(tid, path_uuid(share_id, share_not_found()))

"""/api/v1/webhooks: event webhook subscriptions (create, list, read, edit, delete, test, and
the recent deliveries)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body, write_source
from control_plane.core.service import provide
from control_plane.domain.notifications.schemas import TestResult

from .schemas import Webhook, WebhookCreate, WebhookDelivery, WebhookUpdate
from .service import WebhookService, webhook_not_found

LIST = PageSize(default=50, cap=1000)


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]
    dependencies = {"webhooks": provide(WebhookService)}

    @post(
        "/",
        operation_id="createWebhook",
        opt=requires("webhooks:write"),
        status_code=HTTP_201_CREATED,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        webhooks: NamedDependency[WebhookService],
        data: JSONBody[WebhookCreate],
    ) -> Response[Webhook]:
        """Subscribe a URL to events (``monitor.*``, ``incident.*``, ``maintenance.*``)."""
        body = await strict_body(request, WebhookCreate)
        hook = await webhooks.create(body, write_source(request))
        return Response(
            hook, status_code=HTTP_201_CREATED, headers={"Location": f"/api/v1/webhooks/{hook.id}"}
        )

    @get("/", operation_id="listWebhooks", opt=requires("webhooks:read"))
    async def list_webhooks(
        self,
        webhooks: NamedDependency[WebhookService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Webhook]:
        """The org's webhook subscriptions, oldest first."""
        paging = LIST.paging(limit, offset)
        items, total = await webhooks.page(paging.limit, paging.offset)
        return paging.page(items, total)

    @get("/{webhook_id:str}", operation_id="getWebhook", opt=requires("webhooks:read"))
    async def get_webhook(
        self, webhooks: NamedDependency[WebhookService], webhook_id: FromPath[str]
    ) -> Webhook:
        """One subscription (its secret reads ``"***"``)."""
        return await webhooks.get(path_uuid(webhook_id, webhook_not_found()))

    @patch("/{webhook_id:str}", operation_id="updateWebhook", opt=requires("webhooks:write"))
    async def update(
        self,
        request: Request[Any, Any, Any],
        webhooks: NamedDependency[WebhookService],
        webhook_id: FromPath[str],
        data: JSONBody[WebhookUpdate],
    ) -> Webhook:
        """Edit any field; omitted fields are left alone (a ``"***"`` secret is refused)."""
        wid = path_uuid(webhook_id, webhook_not_found())
        body = await strict_body(request, WebhookUpdate)
        return await webhooks.update(wid, body, write_source(request))

    @delete(
        "/{webhook_id:str}",
        operation_id="deleteWebhook",
        opt=requires("webhooks:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_webhook(
        self, webhooks: NamedDependency[WebhookService], webhook_id: FromPath[str]
    ) -> None:
        """Delete a subscription (its undelivered events with it)."""
        await webhooks.delete(path_uuid(webhook_id, webhook_not_found()))

    @post(
        "/{webhook_id:str}/test",
        operation_id="testWebhook",
        opt=requires("webhooks:write"),
        status_code=HTTP_200_OK,
    )
    async def test_webhook(
        self, webhooks: NamedDependency[WebhookService], webhook_id: FromPath[str]
    ) -> TestResult:
        """Send a signed ``webhook.test`` event now; 422 ``WEBHOOK_TEST_FAILED`` if refused."""
        return await webhooks.test(path_uuid(webhook_id, webhook_not_found()))

    @get(
        "/{webhook_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        opt=requires("webhooks:read"),
    )
    async def deliveries(
        self,
        webhooks: NamedDependency[WebhookService],
        webhook_id: FromPath[str],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[WebhookDelivery]:
        """The subscription's events and their delivery state (dead letters included), newest
        first."""
        paging = LIST.paging(limit, offset)
        wid = path_uuid(webhook_id, webhook_not_found())
        items, total = await webhooks.deliveries(wid, paging.limit, paging.offset)
        return paging.page(items, total)

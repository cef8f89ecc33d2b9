"""/api/v1/notification-channels, the incident notifications, and the public verification link:
thin handlers that parse, authorise (org from token) and call the service."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from control_plane.core.errors import not_found
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body, write_source
from control_plane.core.service import provide

from .links import LinkService
from .schemas import (
    Channel,
    ChannelCreate,
    ChannelTest,
    ChannelUpdate,
    LinkCode,
    LinkCodeCreate,
    NotificationList,
    TestResult,
    Verified,
)
from .service import ChannelService, VerificationService, channel_not_found
from .telegram_link import FLOW as TELEGRAM
from .telegram_link import TelegramLinkService
from .whatsapp_link import FLOW as WHATSAPP
from .whatsapp_link import WhatsAppLinkService

LIST = PageSize(default=50, cap=1000)
WRITE_ERRORS = errors(
    s422="[CHANNEL_NAME_TAKEN] another channel of the org has this name; "
    "[CHANNEL_QUOTA_EXCEEDED] the org's plan allows no more channels; "
    "[CHANNEL_KIND_MANAGED] telegram_app/whatsapp_app are created by the link-code flow"
)
TEST_ERRORS = errors(
    s422="[CHANNEL_TEST_FAILED] the transport refused or failed; [CIRCUIT_OPEN] the channel's "
    "circuit is open; [CHANNEL_UNVERIFIED] an unverified email address; "
    "[CHANNEL_KIND_MANAGED] a managed kind"
)


class ChannelController(Controller):
    path = "/notification-channels"
    tags = ["notification-channels"]
    dependencies = {
        "channels": provide(ChannelService),
        "telegram_links": provide(TelegramLinkService),
        "whatsapp_links": provide(WhatsAppLinkService),
    }

    @post(
        "/",
        operation_id="createChannel",
        opt=requires("channels:write"),
        status_code=HTTP_201_CREATED,
        responses=WRITE_ERRORS,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        channels: NamedDependency[ChannelService],
        data: JSONBody[ChannelCreate],
    ) -> Response[Channel]:
        """Create a channel (secrets sealed, read back as ``***``). An email channel starts
        unverified and is sent a single-use 24 h link."""
        body = await strict_body(request, ChannelCreate)
        channel = await channels.create(body, write_source(request))
        return Response(
            channel,
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/notification-channels/{channel.id}"},
        )

    @get("/", operation_id="listChannels", opt=requires("channels:read"))
    async def list_channels(
        self,
        channels: NamedDependency[ChannelService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Channel]:
        """The org's channels, oldest first."""
        paging = LIST.paging(limit, offset)
        items, total = await channels.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @post(
        "/test",
        operation_id="testUnsavedChannel",
        opt=requires("channels:write"),
        status_code=HTTP_200_OK,
        responses=TEST_ERRORS,
    )
    async def test_unsaved(
        self,
        request: Request[Any, Any, Any],
        channels: NamedDependency[ChannelService],
        data: JSONBody[ChannelTest],
    ) -> TestResult:
        """Send a synthetic alert through an unsaved config (validated as create would);
        nothing is persisted."""
        return await channels.test_unsaved(await strict_body(request, ChannelTest))

    @get("/{channel_id:str}", operation_id="getChannel", opt=requires("channels:read"))
    async def get_channel(
        self, channels: NamedDependency[ChannelService], channel_id: FromPath[str]
    ) -> Channel:
        """One channel; secrets read back as ``***``."""
        return await channels.get(path_uuid(channel_id, channel_not_found()))

    @patch(
        "/{channel_id:str}",
        operation_id="updateChannel",
        opt=requires("channels:write"),
        responses=WRITE_ERRORS,
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        channels: NamedDependency[ChannelService],
        channel_id: FromPath[str],
        data: JSONBody[ChannelUpdate],
    ) -> Channel:
        """Partial update; omit ``config`` to keep the stored secrets."""
        cid = path_uuid(channel_id, channel_not_found())
        body = await strict_body(request, ChannelUpdate)
        return await channels.update(cid, body, write_source(request))

    @delete(
        "/{channel_id:str}",
        operation_id="deleteChannel",
        opt=requires("channels:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_channel(
        self, channels: NamedDependency[ChannelService], channel_id: FromPath[str]
    ) -> None:
        """Delete a channel and its alert bindings on every target."""
        await channels.delete(path_uuid(channel_id, channel_not_found()))

    @post(
        "/telegram-link",
        operation_id="createTelegramLink",
        opt=requires("channels:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s404="[TELEGRAM_LINK_NOT_FOUND] this deployment runs no central Telegram bot",
            s422="[TELEGRAM_LINK_LIMIT] too many outstanding link codes",
        ),
    )
    async def create_telegram_link(
        self,
        request: Request[Any, Any, Any],
        telegram_links: NamedDependency[TelegramLinkService],
        data: JSONBody[LinkCodeCreate | None] = None,
    ) -> Response[LinkCode]:
        """Mint a single-use link code (15 minutes) for the central Telegram bot: send it to
        the bot (the deep links do) and the org gets a ``telegram_app`` channel for that chat."""
        return await _mint(request, telegram_links, "telegram-link")

    @get(
        "/telegram-link/{link_id:str}",
        operation_id="getTelegramLink",
        opt=requires("channels:read"),
        responses=errors(s404="[TELEGRAM_LINK_NOT_FOUND] no such link code"),
    )
    async def get_telegram_link(
        self, telegram_links: NamedDependency[TelegramLinkService], link_id: FromPath[str]
    ) -> LinkCode:
        """A link code's state: pending, consumed (with ``channel_id``) or expired."""
        return await telegram_links.get(path_uuid(link_id, TELEGRAM.not_found()))

    @post(
        "/whatsapp-link",
        operation_id="createWhatsAppLink",
        opt=requires("channels:write"),
        status_code=HTTP_201_CREATED,
        responses=errors(
            s404="[WHATSAPP_LINK_NOT_FOUND] this deployment has no platform WhatsApp number",
            s422="[WHATSAPP_LINK_LIMIT] too many outstanding link codes",
        ),
    )
    async def create_whatsapp_link(
        self,
        request: Request[Any, Any, Any],
        whatsapp_links: NamedDependency[WhatsAppLinkService],
        data: JSONBody[LinkCodeCreate | None] = None,
    ) -> Response[LinkCode]:
        """Mint a single-use link code (15 minutes) for the platform's WhatsApp number: the
        ``deep_link`` opens WhatsApp with the code prefilled; sending it gives the org a
        ``whatsapp_app`` channel bound to the sender's number."""
        return await _mint(request, whatsapp_links, "whatsapp-link")

    @get(
        "/whatsapp-link/{link_id:str}",
        operation_id="getWhatsAppLink",
        opt=requires("channels:read"),
        responses=errors(s404="[WHATSAPP_LINK_NOT_FOUND] no such link code"),
    )
    async def get_whatsapp_link(
        self, whatsapp_links: NamedDependency[WhatsAppLinkService], link_id: FromPath[str]
    ) -> LinkCode:
        """A link code's state: pending, consumed (with ``channel_id``) or expired."""
        return await whatsapp_links.get(path_uuid(link_id, WHATSAPP.not_found()))

    @post(
        "/{channel_id:str}/test",
        operation_id="testChannel",
        opt=requires("channels:write"),
        status_code=HTTP_200_OK,
        responses=TEST_ERRORS,
    )
    async def test_saved(
        self, channels: NamedDependency[ChannelService], channel_id: FromPath[str]
    ) -> TestResult:
        """Send a synthetic alert through a saved channel (a disabled one too)."""
        return await channels.test_saved(path_uuid(channel_id, channel_not_found()))

    @post(
        "/{channel_id:str}/resend-verification",
        operation_id="resendChannelVerification",
        opt=requires("channels:write"),
        status_code=HTTP_200_OK,
        responses=errors(
            s422="[CHANNEL_NOT_VERIFIABLE] not an unverified email channel; "
            "[CHANNEL_VERIFICATION_LIMIT] too many mails today"
        ),
    )
    async def resend_verification(
        self, channels: NamedDependency[ChannelService], channel_id: FromPath[str]
    ) -> Channel:
        """Mail a new verification link to an unverified email channel."""
        return await channels.resend_verification(path_uuid(channel_id, channel_not_found()))


def _incident_not_found() -> Any:
    return not_found("INCIDENT_NOT_FOUND", "incident")


class IncidentNotificationController(Controller):
    path = "/incidents/{incident_id:str}/notifications"
    tags = ["incidents"]
    dependencies = {"channels": provide(ChannelService)}

    @get("/", operation_id="listIncidentNotifications", opt=requires("incidents:read"))
    async def list_notifications(
        self, channels: NamedDependency[ChannelService], incident_id: FromPath[str]
    ) -> NotificationList:
        """Per-channel delivery state of an incident's notifications, with every attempt."""
        items = await channels.notifications(path_uuid(incident_id, _incident_not_found()))
        return NotificationList(items=items)

    @post(
        "/{notification_id:str}/retry",
        operation_id="retryIncidentNotification",
        opt=requires("incidents:write"),
        status_code=HTTP_200_OK,
        responses=errors(s409="[NOTIFICATION_NOT_DEAD] only a dead letter can be retried"),
    )
    async def retry(
        self,
        channels: NamedDependency[ChannelService],
        incident_id: FromPath[str],
        notification_id: FromPath[str],
    ) -> NotificationList:
        """Re-queue a dead-lettered notification."""
        iid = path_uuid(incident_id, _incident_not_found())
        nid = path_uuid(notification_id, not_found("NOTIFICATION_NOT_FOUND", "notification"))
        return NotificationList(items=await channels.retry(iid, nid))


class ChannelVerificationController(Controller):
    """No auth: the single-use token in the path is the credential."""

    path = "/verify/channel"
    tags = ["notification-channels"]
    dependencies = {"verification": provide(VerificationService)}

    @get("/{token:str}", operation_id="verifyChannel", security=[])
    async def verify(
        self, verification: NamedDependency[VerificationService], token: FromPath[str]
    ) -> Verified:
        """Confirm an email channel's address (the link mailed at create)."""
        if len(token) > 200:
            raise not_found("VERIFICATION_NOT_FOUND", "verification link")
        channel_id = await verification.verify(token)
        if channel_id is None:
            raise not_found("VERIFICATION_NOT_FOUND", "verification link")
        return Verified(channel_id=channel_id, verified=True)


async def _mint(
    request: Request[Any, Any, Any], service: LinkService, path: str
) -> Response[LinkCode]:
    raw = (await request.body()).strip()
    # The body is optional: none, or a JSON null, is no name hint.
    body = (
        await strict_body(request, LinkCodeCreate)
        if raw not in (b"", b"null")
        else LinkCodeCreate()
    )
    link = await service.mint(body)
    return Response(
        link,
        status_code=HTTP_201_CREATED,
        headers={"Location": f"/api/v1/notification-channels/{path}/{link.id}"},
    )

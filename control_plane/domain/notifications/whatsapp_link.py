"""WhatsApp one-tap linking (the reference's "WhatsApp one-tap linking"), the WhatsApp side of
``links.py``.

The minting answer carries ``https://wa.me/<number>?text=<code>``, which opens WhatsApp with the
code prefilled to the platform's number. Meta calls ``POST /hooks/whatsapp`` with the messages
that number receives (the Cloud API's webhook, signed ``X-Hub-Signature-256`` with the app
secret; anything unsigned or mis-signed is refused and read no further). A message that is a
pending code creates the org's ``whatsapp_app`` channel bound to the sender's number, and the
sender is told so; the org comes from the code only. A message ``stop`` disables every channel
bound to the number (a platform disable, its reason shown). ``GET /hooks/whatsapp`` answers
the subscription handshake (``hub.verify_token``). Without the platform number configured
the flow is absent: 404 ``WHATSAPP_LINK_NOT_FOUND``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import aiohttp
import msgspec
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK

from control_plane.core.errors import ApiError
from control_plane.core.observability.openapi import errors
from control_plane.core.service import Service, provide
from control_plane.core.state import Resources
from control_plane.settings import NotifySettings

from . import links
from .delivery import Sender
from .service import allow_private
from .transports.whatsapp import messages_url

log = structlog.get_logger("vigil.notify")

_CODE = re.compile(rf"^(?:link\s+)?({links.CODE})$", re.IGNORECASE)
_STOP = re.compile(r"^\s*stop\s*$", re.IGNORECASE)
LINKED = "Linked: Vigil alerts will arrive at this number. Send stop to unlink."
UNKNOWN = "This link code is unknown, used or expired: mint a new one in Vigil."
STOPPED = "Unlinked: Vigil will send no more alerts to this number."


def _deep_links(s: NotifySettings, code: str) -> dict[str, str] | None:
    if not s.whatsapp_link_enabled:
        return None
    return {"deep_link": f"https://wa.me/{s.whatsapp_number}?text={code}"}


FLOW = links.Flow("whatsapp_app", "whatsapp", _deep_links)


class WhatsAppLinkService(links.LinkService):
    flow = FLOW


def signed(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of the raw body with the app secret>``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256=") :].strip().lower(), expected)


class _Text(msgspec.Struct):
    body: str = ""


class _Message(msgspec.Struct):
    from_: str = msgspec.field(name="from", default="")
    type: str = ""
    text: _Text | None = None


class _Profile(msgspec.Struct):
    name: str = ""


class _Contact(msgspec.Struct):
    wa_id: str = ""
    profile: _Profile | None = None


class _Metadata(msgspec.Struct):
    phone_number_id: str = ""


class _Value(msgspec.Struct):
    metadata: _Metadata | None = None
    contacts: list[_Contact] = msgspec.field(default_factory=list)
    messages: list[_Message] = msgspec.field(default_factory=list)


class _Change(msgspec.Struct):
    value: _Value | None = None


class _Entry(msgspec.Struct):
    changes: list[_Change] = msgspec.field(default_factory=list)


class _Notification(msgspec.Struct):
    entry: list[_Entry] = msgspec.field(default_factory=list)


class InboundService(Service):
    """The platform number's inbound messages (no tenant: the code names the org)."""

    async def handle(self, payload: _Notification) -> list[tuple[str, str]]:
        """Act on the messages to our number; returns the (number, text) replies to send."""
        s = self.settings.notify
        key = self.settings.security.token_key
        replies: list[tuple[str, str]] = []
        conn = await self.conn()
        for entry in payload.entry:
            for change in entry.changes:
                value = change.value
                if value is None or value.metadata is None:
                    continue
                if value.metadata.phone_number_id != s.whatsapp_phone_number_id:
                    continue  # another number of the same business account
                names = {c.wa_id: c.profile.name for c in value.contacts if c.profile}
                for message in value.messages:
                    phone = message.from_
                    if not phone.isdigit() or message.type != "text" or message.text is None:
                        continue
                    text = message.text.body.strip()
                    if _STOP.match(text):
                        cur = await conn.execute(links.Q.disable_phone, {"phone": "+" + phone})
                        if cur.rowcount:
                            replies.append((phone, STOPPED))
                        continue
                    m = _CODE.match(text)
                    if m is None:
                        continue
                    code = m.group(1)
                    profile = names.get(phone, "")[:200]
                    made = await links.consume(
                        conn,
                        key,
                        "whatsapp_app",
                        code,
                        {"phone": "+" + phone, "profile_name": profile},
                        f"WhatsApp: {profile or '+' + phone}",
                    )
                    if made is None:
                        before = await links.consumed_into(conn, key, "whatsapp_app", code)
                        if before is not None and before["config"].get("phone") == "+" + phone:
                            continue  # Meta delivered the same message again: already linked
                    replies.append((phone, LINKED if made else UNKNOWN))
        return replies


async def reply(res: Resources, replies: list[tuple[str, str]]) -> None:
    """Free-form text answers (the sender wrote within the last 24 h, so they are delivered),
    from the platform's number, through the SSRF guard."""
    s = res.settings.notify
    if not replies or s.whatsapp_access_token is None:
        return
    sender = Sender(s, allow_private(res.settings))
    try:
        session = sender.session()
        for phone, text in replies:
            body = {"messaging_product": "whatsapp", "to": phone, "type": "text"}
            try:
                async with session.post(
                    messages_url(s),
                    json={**body, "text": {"body": text}},
                    headers={"Authorization": f"Bearer {s.whatsapp_access_token}"},
                    allow_redirects=False,
                ) as resp:
                    await resp.read()
                    if resp.status >= 400:
                        log.warning("whatsapp_reply_refused", status=resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("whatsapp_reply_failed", error=type(exc).__name__)
    finally:
        await sender.close()


class WhatsAppHookController(Controller):
    """Meta's webhook for the platform's WhatsApp number. No bearer: the request's signature
    with the app secret is the credential."""

    path = "/hooks/whatsapp"
    tags = ["notification-channels"]
    dependencies = {"inbound": provide(InboundService)}

    @get(
        "/",
        operation_id="whatsappHookHandshake",
        security=[],
        media_type="text/plain",
        responses=errors(
            s403="[WHATSAPP_VERIFY_FAILED] not the deployment's verify token",
            s404="[WHATSAPP_LINK_NOT_FOUND] this deployment has no platform WhatsApp number",
        ),
    )
    async def handshake(self, request: Request[Any, Any, Any]) -> Response[str]:
        """The subscription handshake: ``hub.challenge`` echoed when ``hub.verify_token`` is the
        deployment's (403 ``WHATSAPP_VERIFY_FAILED`` otherwise)."""
        s = request.app.state.resources.settings.notify
        if not s.whatsapp_link_enabled:
            raise FLOW.not_found()
        q = request.query_params
        token = s.whatsapp_verify_token
        if (
            q.get("hub.mode") != "subscribe"
            or token is None
            or not hmac.compare_digest(str(q.get("hub.verify_token", "")), token)
        ):
            raise ApiError(403, "WHATSAPP_VERIFY_FAILED", "hub.verify_token does not match")
        challenge = str(q.get("hub.challenge", ""))[:200]
        return Response(challenge, media_type="text/plain", status_code=HTTP_200_OK)

    @post(
        "/",
        operation_id="whatsappHook",
        security=[],
        status_code=HTTP_200_OK,
        responses=errors(
            s401="[WHATSAPP_SIGNATURE_INVALID] X-Hub-Signature-256 does not sign the body",
            s404="[WHATSAPP_LINK_NOT_FOUND] this deployment has no platform WhatsApp number",
        ),
    )
    async def receive(
        self, request: Request[Any, Any, Any], inbound: NamedDependency[InboundService]
    ) -> dict[str, bool]:
        """The messages the platform's number received (signed by Meta)."""
        s = inbound.settings.notify
        if not s.whatsapp_link_enabled or s.whatsapp_app_secret is None:
            raise FLOW.not_found()
        raw = await request.body()
        if not signed(s.whatsapp_app_secret, raw, request.headers.get("x-hub-signature-256")):
            raise ApiError(
                401, "WHATSAPP_SIGNATURE_INVALID", "X-Hub-Signature-256 does not sign this body"
            )
        try:
            payload = msgspec.json.decode(raw, type=_Notification)
        except msgspec.ValidationError as exc:
            raise ApiError(400, "VALIDATION_ERROR", f"not a WhatsApp notification: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from exc
        await reply(inbound.res, await inbound.handle(payload))
        return {"received": True}

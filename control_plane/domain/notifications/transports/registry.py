"""Every transport a request body may create, one line each (like ``shared/checks/registry``).

``telegram_app`` and ``whatsapp_app`` are managed kinds (created by the link-code flows only):
a body carrying one is refused with ``CHANNEL_KIND_MANAGED``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from control_plane.core.errors import ApiError

from . import (
    discord,
    email,
    google_chat,
    msteams,
    ntfy,
    pagerduty,
    pushover,
    slack,
    sms,
    telegram,
    webhook,
    whatsapp,
)
from .base import Config, TransportInfo

TRANSPORTS: dict[str, TransportInfo] = {
    t.kind: t
    for t in (
        slack.KIND,
        discord.KIND,
        msteams.KIND,
        google_chat.KIND,
        webhook.KIND,
        telegram.KIND,
        whatsapp.KIND,
        pagerduty.KIND,
        ntfy.KIND,
        pushover.KIND,
        email.KIND,
        sms.KIND,
    )
}
MANAGED = frozenset({"telegram_app", "whatsapp_app"})
# What the delivery job and test sends can send through: the body-creatable kinds and the
# managed kinds.
DELIVERABLE: dict[str, TransportInfo] = {
    **TRANSPORTS,
    telegram.APP_KIND.kind: telegram.APP_KIND,
    whatsapp.APP_KIND.kind: whatsapp.APP_KIND,
}


TelegramAppConfig = telegram.TelegramAppConfig
WhatsAppAppConfig = whatsapp.WhatsAppAppConfig


ChannelConfig = (
    slack.SlackConfig
    | discord.DiscordConfig
    | msteams.TeamsConfig
    | google_chat.GoogleChatConfig
    | webhook.WebhookConfig
    | telegram.TelegramConfig
    | whatsapp.WhatsAppConfig
    | pagerduty.PagerDutyConfig
    | ntfy.NtfyConfig
    | pushover.PushoverConfig
    | email.EmailConfig
    | sms.SmsConfig
)
# What a request body's ``config`` may decode to: the managed kinds decode, then are refused.
BodyConfig = ChannelConfig | TelegramAppConfig | WhatsAppAppConfig
# What a stored channel's config may be (delivery opens it).
StoredConfig = ChannelConfig | TelegramAppConfig | WhatsAppAppConfig


def kind_of(cfg: Config) -> str:
    tag = type(cfg).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def refuse_managed(cfg: Config) -> Config:
    """A body's config, unless it is a managed kind (``CHANNEL_KIND_MANAGED``)."""
    kind = kind_of(cfg)
    if kind in MANAGED:
        raise ApiError(
            422,
            "CHANNEL_KIND_MANAGED",
            f"{kind} channels are created only by the link-code flow, not from a request body",
            "/config/type",
        )
    return cfg


def parse(raw: Any) -> Config:
    """A config from a request body's ``config`` object: the kind's struct, or the error a
    client can act on (``CHANNEL_KIND_MANAGED``, ``INVALID_CHANNEL_CONFIG`` with its field)."""
    if not isinstance(raw, dict):
        raise ApiError(400, "INVALID_CHANNEL_CONFIG", "config must be an object", "/config")
    kind = raw.get("type")
    if kind in MANAGED:
        raise ApiError(
            422,
            "CHANNEL_KIND_MANAGED",
            f"{kind} channels are created only by the link-code flow, not from a request body",
            "/config/type",
        )
    if not isinstance(kind, str) or kind not in TRANSPORTS:
        raise ApiError(
            400,
            "INVALID_CHANNEL_CONFIG",
            f"config.type must be one of {', '.join(sorted(TRANSPORTS))}",
            "/config/type",
        )
    try:
        cfg: Config = msgspec.convert(raw, ChannelConfig, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit("at `$.", 1)[-1].rstrip("`") if "at `$." in message else ""
        field = "/config/" + path.split("[")[0].split(".")[0] if path else "/config"
        if "missing required field `" in message:
            field = "/config/" + message.split("missing required field `", 1)[1].split("`")[0]
        raise ApiError(400, "INVALID_CHANNEL_CONFIG", message, field) from None
    return cfg

"""Pushover: urgent alerts at priority 1 (bypasses quiet hours), the rest 0, resolves -1.
Emergency priority 2 is not used."""

from __future__ import annotations

import re
from typing import Any

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    cap,
    invalid,
    json_request,
    rebase,
    text,
    title,
)

API = "https://api.pushover.net/1/messages.json"
_KEY = re.compile(r"^[A-Za-z0-9]{30}$")


class PushoverConfig(Config, tag="pushover"):
    token: str
    user: str
    device: str | None = None


def validate(cfg: PushoverConfig, ctx: Context) -> None:
    if not _KEY.match(cfg.token):
        raise invalid("token", "token must be the 30-character application token")
    if not _KEY.match(cfg.user):
        raise invalid("user", "user must be the 30-character user or group key")
    if cfg.device is not None and not re.match(r"^[A-Za-z0-9_-]{1,25}$", cfg.device):
        raise invalid("device", "device is 1-25 letters, digits, _ or -")


def priority(alert: Alert) -> int:
    if alert.kind == "recovery":
        return -1
    return 1 if alert.urgent else 0


def build(cfg: PushoverConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    payload: dict[str, Any] = {
        "token": cfg.token,
        "user": cfg.user,
        "title": cap(title(alert), 250),
        "message": cap(text(alert), 1024),
        "priority": priority(alert),
    }
    if cfg.device:
        payload["device"] = cfg.device
    return [json_request(rebase("pushover", API, ctx.settings), payload)]


KIND = TransportInfo(
    "pushover", PushoverConfig, validate, build, secrets=("token", "user"), chat=True
)

"""ntfy: a JSON publish to the server root. Urgent opens at priority 4, the rest 3; opens tag
``rotating_light``, resolves ``white_check_mark``."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    cap,
    https_url,
    invalid,
    json_request,
    rebase,
    text,
    title,
)


class NtfyConfig(Config, tag="ntfy"):
    topic: str
    server_url: str = "https://ntfy.sh"
    access_token: str | None = None


def validate(cfg: NtfyConfig, ctx: Context) -> None:
    https_url(cfg.server_url, "server_url", ctx, allow_http=True)
    parts = urlsplit(cfg.server_url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise invalid("server_url", "server_url must be the bare server root, e.g. https://ntfy.sh")
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", cfg.topic):
        raise invalid("topic", "topic is 1-64 letters, digits, _ or -")
    if cfg.access_token is not None and not cfg.access_token.strip():
        raise invalid("access_token", "access_token must not be empty when given")


def build(cfg: NtfyConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("ntfy", cfg.server_url.rstrip("/") + "/", ctx.settings)
    payload = {
        "topic": cfg.topic,
        "title": cap(title(alert), 250),
        "message": cap(text(alert), 4000),
        "priority": 4 if alert.urgent else 3,
        "tags": ["white_check_mark"] if alert.kind == "recovery" else ["rotating_light"],
    }
    headers = {"Authorization": f"Bearer {cfg.access_token}"} if cfg.access_token else {}
    return [json_request(url, payload, headers)]


KIND = TransportInfo(
    "ntfy",
    NtfyConfig,
    validate,
    build,
    secrets=("access_token",),
    url_field="server_url",
    chat=True,
)

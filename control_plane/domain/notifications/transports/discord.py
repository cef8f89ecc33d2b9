"""Discord channel webhook: posts ``{"content": …}`` with ``?wait=true`` (failures surface
synchronously), text capped at 2,000 characters."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    cap,
    https_url,
    json_request,
    pinned,
    rebase,
    text,
)

HOSTS = ("discord.com", "discordapp.com")
LIMIT = 2000


class DiscordConfig(Config, tag="discord"):
    webhook_url: str


def validate(cfg: DiscordConfig, ctx: Context) -> None:
    https_url(cfg.webhook_url, "webhook_url", ctx)
    pinned(cfg.webhook_url, "webhook_url", HOSTS, "discord", "/api/webhooks/")


def _wait(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["wait"] = "true"
    return urlunsplit(parts._replace(query=urlencode(query)))


def build(cfg: DiscordConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = _wait(rebase("discord", cfg.webhook_url, ctx.settings))
    return [json_request(url, {"content": cap(text(alert), LIMIT)})]


KIND = TransportInfo(
    "discord",
    DiscordConfig,
    validate,
    build,
    secrets=("webhook_url",),
    url_field="webhook_url",
    chat=True,
)

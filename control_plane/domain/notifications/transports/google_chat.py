"""Google Chat space webhook: posts ``{"text": …}``, capped at 4,096 characters."""

from __future__ import annotations

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

HOSTS = ("chat.googleapis.com",)
LIMIT = 4096


class GoogleChatConfig(Config, tag="google_chat"):
    webhook_url: str


def validate(cfg: GoogleChatConfig, ctx: Context) -> None:
    https_url(cfg.webhook_url, "webhook_url", ctx)
    pinned(cfg.webhook_url, "webhook_url", HOSTS, "google_chat", "/v1/spaces/")


def build(cfg: GoogleChatConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("google_chat", cfg.webhook_url, ctx.settings)
    return [json_request(url, {"text": cap(text(alert), LIMIT)})]


KIND = TransportInfo(
    "google_chat",
    GoogleChatConfig,
    validate,
    build,
    secrets=("webhook_url",),
    url_field="webhook_url",
    chat=True,
)

"""Slack incoming webhook: posts ``{"text": …}``."""

from __future__ import annotations

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    https_url,
    json_request,
    rebase,
    text,
)


class SlackConfig(Config, tag="slack"):
    webhook_url: str


def validate(cfg: SlackConfig, ctx: Context) -> None:
    https_url(cfg.webhook_url, "webhook_url", ctx)


def build(cfg: SlackConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    return [json_request(rebase("slack", cfg.webhook_url, ctx.settings), {"text": text(alert)})]


KIND = TransportInfo(
    "slack",
    SlackConfig,
    validate,
    build,
    secrets=("webhook_url",),
    url_field="webhook_url",
    chat=True,
)

"""Microsoft Teams Workflows webhook: posts an Adaptive Card. Retired O365 connector URLs
(``*.webhook.office.com``) are refused by the host pinning."""

from __future__ import annotations

from typing import Any

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    https_url,
    json_request,
    pinned,
    rebase,
    text,
    title,
)

HOSTS = ("*.logic.azure.com", "*.powerplatform.com")


class TeamsConfig(Config, tag="msteams"):
    webhook_url: str


def validate(cfg: TeamsConfig, ctx: Context) -> None:
    https_url(cfg.webhook_url, "webhook_url", ctx)
    pinned(cfg.webhook_url, "webhook_url", HOSTS, "msteams")


def card(alert: Alert) -> dict[str, Any]:
    color = "Good" if alert.kind == "recovery" else "Attention"
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "size": "Medium",
                            "weight": "Bolder",
                            "color": color,
                            "text": title(alert),
                        },
                        {"type": "TextBlock", "wrap": True, "text": text(alert)},
                    ],
                },
            }
        ],
    }


def build(cfg: TeamsConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    return [json_request(rebase("msteams", cfg.webhook_url, ctx.settings), card(alert))]


KIND = TransportInfo(
    "msteams",
    TeamsConfig,
    validate,
    build,
    secrets=("webhook_url",),
    url_field="webhook_url",
    chat=True,
)

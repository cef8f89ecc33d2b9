"""Telegram: bring-your-own bot (``telegram``: ``POST {api}/bot<token>/sendMessage``), and
``telegram_app``, a chat linked to the deployment's central bot by the link-code flow
(``telegram_link.py``): the same request with the operator's token, never the tenant's."""

from __future__ import annotations

import re

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
    require,
    text,
)

API = "https://api.telegram.org"
_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$")


class TelegramConfig(Config, tag="telegram"):
    bot_token: str
    chat_id: str


def validate(cfg: TelegramConfig, ctx: Context) -> None:
    require(cfg.bot_token, "bot_token")
    require(cfg.chat_id, "chat_id")
    if not _TOKEN.match(cfg.bot_token):
        raise invalid("bot_token", "bot_token must look like 123456:ABC… (from @BotFather)")
    if len(cfg.chat_id) > 100 or not re.match(r"^(-?[0-9]+|@[A-Za-z0-9_]{4,})$", cfg.chat_id):
        raise invalid("chat_id", "chat_id must be a numeric chat id or an @channel name")


def build(cfg: TelegramConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("telegram", f"{API}/bot{cfg.bot_token}/sendMessage", ctx.settings)
    payload = {"chat_id": cfg.chat_id, "text": cap(text(alert), 4096)}
    return [json_request(url, payload)]


KIND = TransportInfo("telegram", TelegramConfig, validate, build, secrets=("bot_token",), chat=True)


class TelegramAppConfig(Config, tag="telegram_app"):
    """Managed: created only by the Telegram link-code flow (a body carrying it is 422)."""

    chat_id: str
    chat_title: str = ""


def validate_app(cfg: TelegramAppConfig, ctx: Context) -> None:
    require(cfg.chat_id, "chat_id")


def build_app(cfg: TelegramAppConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    token = ctx.settings.telegram_bot_token
    if not token:
        raise ValueError("this deployment runs no central Telegram bot")
    url = rebase("telegram", f"{API}/bot{token}/sendMessage", ctx.settings)
    return [json_request(url, {"chat_id": cfg.chat_id, "text": cap(text(alert), 4096)})]


APP_KIND = TransportInfo("telegram_app", TelegramAppConfig, validate_app, build_app, chat=True)

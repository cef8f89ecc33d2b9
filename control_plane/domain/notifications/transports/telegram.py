"""Telegram, bring-your-own bot: ``POST {api}/bot<token>/sendMessage``."""

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

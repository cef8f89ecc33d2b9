"""Telegram one-tap linking (the reference's "Telegram one-tap linking"), the Telegram side of
``links.py``.

The minting answer carries ``t.me/<bot>?start=<code>`` (a private chat) and
``?startgroup=<code>`` (a group). When the deployment's central bot receives the code
(``/start <code>``, or ``/link <code>`` in a group), the worker's ``poll`` creates the org's
``telegram_app`` channel for that chat. ``/stop`` in a chat, or the bot removed from it,
disables the channels linked to it. The bot's updates are read with ``getUpdates`` (the offset
is kept in the database, so an update is handled once). Without a configured bot the flow is
absent: 404 ``TELEGRAM_LINK_NOT_FOUND``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import aiohttp
import structlog
from psycopg import AsyncConnection

from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.settings import NotifySettings

from . import jobs, links
from .delivery import Sender
from .service import allow_private
from .transports.base import rebase
from .transports.telegram import API

Q = Queries.beside(__file__, "telegram")
log = structlog.get_logger("vigil.notify")

_COMMAND = re.compile(rf"^/(start|link)(@[A-Za-z0-9_]+)?\s+({links.CODE})\s*$")
_STOP = re.compile(r"^/stop(@[A-Za-z0-9_]+)?\s*$")


def _deep_links(s: NotifySettings, code: str) -> dict[str, str] | None:
    bot = s.telegram_bot_username
    if not s.telegram_bot_token or not bot:
        return None
    return {
        "deep_link": f"https://t.me/{bot}?start={code}",
        "group_deep_link": f"https://t.me/{bot}?startgroup={code}",
    }


FLOW = links.Flow("telegram_app", "telegram", _deep_links)


class TelegramLinkService(links.LinkService):
    flow = FLOW


async def consume(
    conn: AsyncConnection[Any], token_key: bytes, code: str, chat: dict[str, Any]
) -> uuid.UUID | None:
    """The code's org gets a ``telegram_app`` channel for ``chat`` (``links.consume``)."""
    chat_id = str(chat["id"])
    title = str(chat.get("title") or chat.get("username") or chat.get("first_name") or chat_id)
    return await links.consume(
        conn,
        token_key,
        "telegram_app",
        code,
        {"chat_id": chat_id, "chat_title": title[:200]},
        f"Telegram: {title}",
    )


async def close(ctx: dict[str, Any]) -> None:
    sender = jobs.state(ctx).pop("telegram_sender", None)
    if sender is not None:
        await sender.close()


async def poll(ctx: dict[str, Any]) -> int:
    """The worker's cron job: read the central bot's new updates and act on link codes and
    unlinks; returns how many updates were read."""
    res: Resources = ctx["resources"]
    s = res.settings.notify
    if not s.telegram_bot_token:
        return 0
    held = jobs.state(ctx)
    sender: Sender | None = held.get("telegram_sender")
    if sender is None:
        sender = held["telegram_sender"] = Sender(s, allow_private(res.settings))
    session = sender.session()
    base = rebase("telegram", f"{API}/bot{s.telegram_bot_token}", s)
    async with res.db.connection() as conn:
        row = await (await conn.execute(Q.offset)).fetchone()
        offset = int(row["update_offset"]) if row else 0
        try:
            async with session.post(
                base + "/getUpdates",
                json={
                    "offset": offset,
                    "timeout": 0,
                    "allowed_updates": ["message", "my_chat_member"],
                },
                allow_redirects=False,
            ) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("telegram_updates_failed", error=type(exc).__name__)
            return 0
        if not isinstance(body, dict) or not body.get("ok"):
            log.warning("telegram_updates_refused", status=resp.status)
            return 0
        updates = body.get("result") or []
        replies: list[tuple[str, str]] = []
        for update in updates:
            offset = max(offset, int(update.get("update_id", 0)) + 1)
            message = update.get("message") or {}
            member = update.get("my_chat_member") or {}
            chat = message.get("chat") or member.get("chat")
            if not isinstance(chat, dict) or "id" not in chat:
                continue
            new_status = (member.get("new_chat_member") or {}).get("status")
            text = str(message.get("text") or "")
            if new_status in ("left", "kicked") or _STOP.match(text):
                await conn.execute(links.Q.disable_chat, {"chat_id": str(chat["id"])})
                continue
            m = _COMMAND.match(text)
            if m is None:
                continue
            made = await consume(conn, res.settings.security.token_key, m.group(3), chat)
            replies.append(
                (
                    str(chat["id"]),
                    "Linked: Vigil alerts will arrive in this chat."
                    if made
                    else "This link code is unknown, used or expired: mint a new one in Vigil.",
                )
            )
        await conn.execute(Q.save_offset, {"offset": offset})
    for chat_id, text in replies:
        try:
            async with session.post(
                base + "/sendMessage", json={"chat_id": chat_id, "text": text}
            ) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            log.warning("telegram_reply_failed")
    return len(updates)

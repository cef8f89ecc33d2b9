"""Telegram one-tap linking (the reference's "Telegram one-tap linking").

An org mints a single-use code (15 minutes; only its hash is stored; at most ``MAX_OUTSTANDING``
pending per org, 422 ``TELEGRAM_LINK_LIMIT``); the answer carries ``t.me/<bot>?start=<code>``
(a private chat) and ``?startgroup=<code>`` (a group). When the deployment's central bot
receives the code (``/start <code>``, or ``/link <code>`` in a group), the worker's ``poll``
creates the org's ``telegram_app`` channel for that chat; the org comes from the code only,
never from the Telegram payload. ``/stop`` in a chat, or the bot removed from it, disables the
channels linked to it. The bot's updates are read with ``getUpdates`` (the offset is kept in
the database, so an update is handled once). Without a configured bot the flow is absent:
404 ``TELEGRAM_LINK_NOT_FOUND``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from control_plane.core import quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.security.tokens import token_hash

from . import jobs
from .delivery import Sender
from .schemas import TelegramLink, TelegramLinkCreate
from .service import Q as CHANNEL_Q
from .service import allow_private, channel_name
from .transports.base import rebase
from .transports.telegram import API

Q = Queries.beside(__file__, "telegram")
log = structlog.get_logger("vigil.notify")

TTL_SECS = 15 * 60
MAX_OUTSTANDING = 10
_COMMAND = re.compile(r"^/(start|link)(@[A-Za-z0-9_]+)?\s+([A-Za-z0-9_-]{8,64})\s*$")
_STOP = re.compile(r"^/stop(@[A-Za-z0-9_]+)?\s*$")


def link_not_found() -> ApiError:
    return not_found("TELEGRAM_LINK_NOT_FOUND", "telegram link")


def _state(row: dict[str, Any]) -> str:
    if row["consumed_at"] is not None:
        return "consumed"
    return "expired" if row["expires_at"] <= datetime.now(UTC) else "pending"


class TelegramLinkService(TenantService):
    def _bot(self) -> str:
        s = self.settings.notify
        if not s.telegram_bot_token or not s.telegram_bot_username:
            raise link_not_found()
        return s.telegram_bot_username

    async def mint(self, data: TelegramLinkCreate) -> TelegramLink:
        bot = self._bot()
        name = None if data.name is None else channel_name(data.name)
        code = secrets.token_urlsafe(16)
        conn = await self.conn()
        async with conn.transaction():
            await conn.execute(quotas.LOCK, {"key": f"{self.org.org_id}:telegram_links"})
            row = await (
                await conn.execute(Q.count_outstanding, {"org_id": self.org.org_id})
            ).fetchone()
            if row is not None and int(row["n"]) >= MAX_OUTSTANDING:
                raise ApiError(
                    422,
                    "TELEGRAM_LINK_LIMIT",
                    f"at most {MAX_OUTSTANDING} outstanding link codes per org; use or let "
                    "one expire first",
                )
            made = await (
                await conn.execute(
                    Q.insert_link,
                    {
                        "id": new_id(),
                        "org_id": self.org.org_id,
                        "code_hash": token_hash(self.settings.security.token_key, code),
                        "name": name,
                        "ttl": TTL_SECS,
                    },
                )
            ).fetchone()
            assert made is not None
            await self.audit(conn, "telegram_link.create", "telegram_link", made["id"])
        return TelegramLink(
            id=made["id"],
            state="pending",
            expires_at=made["expires_at"],
            code=code,
            deep_link=f"https://t.me/{bot}?start={code}",
            group_deep_link=f"https://t.me/{bot}?startgroup={code}",
        )

    async def get(self, link_id: uuid.UUID) -> TelegramLink:
        self._bot()
        conn = await self.conn()
        row = await (
            await conn.execute(Q.get_link, {"org_id": self.org.org_id, "id": link_id})
        ).fetchone()
        if row is None:
            raise link_not_found()
        state = _state(row)
        return TelegramLink(
            id=row["id"],
            state=state,  # type: ignore[arg-type]
            expires_at=row["expires_at"],
            channel_id=row["channel_id"],
        )


async def consume(
    conn: AsyncConnection[Any], token_key: bytes, code: str, chat: dict[str, Any]
) -> uuid.UUID | None:
    """The code's org gets a ``telegram_app`` channel for ``chat``; None when the code is
    unknown, used or expired (or the org's channel quota is full)."""
    chat_id = str(chat["id"])
    title = str(chat.get("title") or chat.get("username") or chat.get("first_name") or chat_id)
    async with conn.transaction():
        link = await (
            await conn.execute(Q.take_link, {"code_hash": token_hash(token_key, code)})
        ).fetchone()
        if link is None:
            return None
        org_id = link["org_id"]
        try:
            await quotas.enforce(
                conn,
                org_id,
                "max_notification_channels",
                CHANNEL_Q.count_org_channels,
                code="CHANNEL_QUOTA_EXCEEDED",
            )
        except ApiError:
            return None
        base = (link["name"] or f"Telegram: {title}")[:90]
        channel_id = new_id()
        for n in range(1, 50):
            name = base if n == 1 else f"{base} ({n})"
            row = await (
                await conn.execute(
                    CHANNEL_Q.insert_channel,
                    {
                        "id": channel_id,
                        "org_id": org_id,
                        "name": name,
                        "kind": "telegram_app",
                        "config": Jsonb(
                            {"type": "telegram_app", "chat_id": chat_id, "chat_title": title[:200]}
                        ),
                        "secrets": Jsonb({}),
                        "enabled": True,
                        "write_source": "api",
                        "verified_at": None,
                        "verify_token_hash": None,
                        "verify_expires_at": None,
                    },
                )
            ).fetchone()
            if row is not None:
                break
        else:
            return None
        await conn.execute(Q.consume_link, {"id": link["id"], "channel_id": channel_id})
    log.info("telegram_linked", org_id=str(org_id), channel_id=str(channel_id))
    return channel_id


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
                await conn.execute(Q.disable_chat, {"chat_id": str(chat["id"])})
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

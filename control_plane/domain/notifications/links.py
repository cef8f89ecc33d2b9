"""One-tap linking of the managed kinds (the reference's "Telegram one-tap linking" and
"WhatsApp one-tap linking"): the part both flows share.

An org mints a single-use code (15 minutes; only its hash is stored; at most ``MAX_OUTSTANDING``
pending per org and kind, 422 ``<KIND>_LINK_LIMIT``) and polls it by id. When the platform's
bot or number receives the code, ``consume`` creates the org's managed channel; the org comes
from the code only, never from the provider's payload. A deployment without the platform
side configured has no flow: 404 ``<KIND>_LINK_NOT_FOUND``. The kind-specific parts (deep
links, how the code arrives) are ``telegram_link.py`` and ``whatsapp_link.py``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from control_plane.core import quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.security.tokens import token_hash
from control_plane.settings import NotifySettings

from .schemas import LinkCode, LinkCodeCreate
from .service import Q as CHANNEL_Q
from .service import channel_name

Q = Queries.beside(__file__, "links")
log = structlog.get_logger("vigil.notify")

TTL_SECS = 15 * 60
MAX_OUTSTANDING = 10
# What a received message must be to count as a code (token_urlsafe(16) is 22 characters).
CODE = r"[A-Za-z0-9_-]{8,64}"


@dataclass(frozen=True, slots=True)
class Flow:
    """One managed kind's linking: ``kind`` the channel kind it creates, ``label`` its error
    codes' and audit actions' prefix, ``links`` the deep links for a code (None when the
    deployment has not configured the platform side: the flow is then absent)."""

    kind: str
    label: str
    links: Callable[[NotifySettings, str], dict[str, str] | None]

    def not_found(self) -> ApiError:
        return not_found(f"{self.label.upper()}_LINK_NOT_FOUND", f"{self.label} link")


def _state(row: dict[str, Any]) -> str:
    if row["consumed_at"] is not None:
        return "consumed"
    return "expired" if row["expires_at"] <= datetime.now(UTC) else "pending"


class LinkService(TenantService):
    """Mint and poll link codes of the org; ``flow`` is set by the kind's subclass."""

    flow: Flow

    def _links(self, code: str) -> dict[str, str]:
        links = self.flow.links(self.settings.notify, code)
        if links is None:
            raise self.flow.not_found()
        return links

    def _require_flow(self) -> None:
        """404 when the deployment has not configured the platform side (no deep links)."""
        if self.flow.links(self.settings.notify, "") is None:
            raise self.flow.not_found()

    async def mint(self, data: LinkCodeCreate) -> LinkCode:
        code = secrets.token_urlsafe(16)
        links = self._links(code)
        name = None if data.name is None else channel_name(data.name)
        kind = self.flow.kind
        conn = await self.conn()
        async with conn.transaction():
            await conn.execute(quotas.LOCK, {"key": f"{self.org.org_id}:{kind}:links"})
            row = await (
                await conn.execute(Q.count_outstanding, {"org_id": self.org.org_id, "kind": kind})
            ).fetchone()
            if row is not None and int(row["n"]) >= MAX_OUTSTANDING:
                raise ApiError(
                    422,
                    f"{self.flow.label.upper()}_LINK_LIMIT",
                    f"at most {MAX_OUTSTANDING} outstanding link codes per org; use or let "
                    "one expire first",
                )
            made = await (
                await conn.execute(
                    Q.insert_link,
                    {
                        "id": new_id(),
                        "org_id": self.org.org_id,
                        "kind": kind,
                        "code_hash": token_hash(self.settings.security.token_key, code),
                        "name": name,
                        "ttl": TTL_SECS,
                    },
                )
            ).fetchone()
            assert made is not None
            await self.audit(
                conn, f"{self.flow.label}_link.create", f"{self.flow.label}_link", made["id"]
            )
        return LinkCode(
            id=made["id"],
            state="pending",
            expires_at=made["expires_at"],
            code=code,
            deep_link=links["deep_link"],
            group_deep_link=links.get("group_deep_link"),
        )

    async def get(self, link_id: uuid.UUID) -> LinkCode:
        self._require_flow()
        conn = await self.conn()
        row = await (
            await conn.execute(
                Q.get_link, {"org_id": self.org.org_id, "kind": self.flow.kind, "id": link_id}
            )
        ).fetchone()
        if row is None:
            raise self.flow.not_found()
        return LinkCode(
            id=row["id"],
            state=_state(row),  # type: ignore[arg-type]
            expires_at=row["expires_at"],
            channel_id=row["channel_id"],
        )


async def consume(
    conn: AsyncConnection[Any],
    token_key: bytes,
    kind: str,
    code: str,
    config: dict[str, Any],
    default_name: str,
) -> uuid.UUID | None:
    """The code's org gets a ``kind`` channel with ``config``; None when the code is unknown,
    used or expired (or the org's channel quota is full). The channel is named after the
    code's name hint, else ``default_name`` (numbered when the org already has that name)."""
    hashed = token_hash(token_key, code)
    async with conn.transaction():
        link = await (
            await conn.execute(Q.take_link, {"code_hash": hashed, "kind": kind})
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
        base = (link["name"] or default_name)[:90]
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
                        "kind": kind,
                        "config": Jsonb({"type": kind, **config}),
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
    log.info("channel_linked", kind=kind, org_id=str(org_id), channel_id=str(channel_id))
    return channel_id


async def consumed_into(
    conn: AsyncConnection[Any], token_key: bytes, kind: str, code: str
) -> dict[str, Any] | None:
    """The channel (id, config) a used code created, if it still exists."""
    row = await (
        await conn.execute(
            Q.consumed_into, {"code_hash": token_hash(token_key, code), "kind": kind}
        )
    ).fetchone()
    return dict(row) if row is not None else None

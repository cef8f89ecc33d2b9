"""Share links: a capability URL (``/m/{token}``) that shows one monitor read-only.

The token is sealed at rest (field ``token`` of ``secrets``, bound to org and share id, rewrapped
by ``vigil keys rotate``) so it stays re-copyable, and matched on the public path by its keyed
hash (``token_hash``), so resolving a link never decrypts anything.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from control_plane.core import quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.permissions import allows
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.targets.service import ensure_target
from control_plane.security.sealing import Sealer, SecretUnavailable
from control_plane.security.tokens import issue

from .schemas import MonitorShare, ShareCreate

Q = Queries.beside(__file__)
SHARE_TOKEN_PREFIX = "vgs_"
MAX_LABEL = 80


def share_not_found() -> ApiError:
    return not_found("SHARE_NOT_FOUND", "share link")


class ShareService(TenantService):
    def reveals_tokens(self) -> bool:
        """Live tokens are for callers who may mint and revoke links (``targets:write``): a
        read-only caller sees the links listed with their token and URL withheld."""
        return allows(self.org.permissions, "targets:write")

    def _share(self, row: dict[str, Any], reveal: bool = True) -> MonitorShare:
        token: str | None = None
        if reveal:
            try:
                token = self.sealer.open(
                    row["secrets"]["token"], Sealer.binding(self.org.org_id, row["id"], "token")
                )
            except (SecretUnavailable, KeyError):
                token = None
        return MonitorShare(
            id=row["id"],
            target_id=row["target_id"],
            label=row["label"],
            token=token,
            share_url=f"{self.public_url}/m/{token}" if token else None,
            expires_at=row["expires_at"],
            created_at=row["created_at"],
        )

    async def create(self, target_id: uuid.UUID, data: ShareCreate) -> MonitorShare:
        label = data.label
        if label is not None and (len(label) > MAX_LABEL or "\x00" in label):
            raise ApiError(
                400,
                "SHARE_LABEL_INVALID",
                f"label must be at most {MAX_LABEL} characters",
                "/label",
            )
        if data.expires_at is not None:
            if data.expires_at.tzinfo is None:
                raise ApiError(
                    400, "INVALID_EXPIRY", "expires_at needs a time zone offset", "/expires_at"
                )
            if data.expires_at <= datetime.now(UTC):
                raise ApiError(400, "INVALID_EXPIRY", "expires_at is in the past", "/expires_at")
        org_id = self.org.org_id
        conn = await self.conn()
        async with conn.transaction():
            await ensure_target(conn, org_id, target_id)
            params: dict[str, Any] = {"org_id": org_id, "target_id": target_id}
            await quotas.enforce(
                conn,
                org_id,
                "max_share_links_per_monitor",
                Q.count_target_shares,
                params=params,
                scope=str(target_id),
            )
            live = await (await conn.execute(Q.count_target_shares, params)).fetchone()
            if live is None or int(live["n"]) == 0:
                await quotas.enforce(conn, org_id, "max_shared_monitors", Q.count_shared_monitors)
            share_id = new_id()
            issued = issue(self.settings.security.token_key, SHARE_TOKEN_PREFIX)
            sealed = self.sealer.seal(issued.token, Sealer.binding(org_id, share_id, "token"))
            row = await (
                await conn.execute(
                    Q.insert_share,
                    {
                        **params,
                        "id": share_id,
                        "label": label,
                        "secrets": Jsonb({"token": sealed}),
                        "token_hash": issued.hash,
                        "expires_at": data.expires_at,
                    },
                )
            ).fetchone()
            assert row is not None
            share = self._share(row)
            await self.audit(
                conn,
                "share.create",
                "target",
                target_id,
                after={"share_id": str(share_id), "label": label, "expires_at": data.expires_at},
            )
            return share

    async def list(self, target_id: uuid.UUID) -> list[MonitorShare]:
        conn = await self.conn()
        await ensure_target(conn, self.org.org_id, target_id)
        rows = await (
            await conn.execute(Q.list_shares, {"org_id": self.org.org_id, "target_id": target_id})
        ).fetchall()
        reveal = self.reveals_tokens()
        return [self._share(r, reveal) for r in rows]

    async def revoke(self, target_id: uuid.UUID, share_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            await ensure_target(conn, self.org.org_id, target_id)
            row = await (
                await conn.execute(
                    Q.revoke_share,
                    {"org_id": self.org.org_id, "target_id": target_id, "id": share_id},
                )
            ).fetchone()
            if row is None:
                raise share_not_found()
            await self.audit(
                conn, "share.revoke", "target", target_id, before={"share_id": str(share_id)}
            )

"""API keys: create (the secret shown once), list (masked), revoke (refused at once after)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from control_plane.core import scopes as sc
from control_plane.core.auth import revoke_cached
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.security import tokens

from .schemas import ApiKey, ApiKeyCreate, ApiKeyCreated

Q = Queries.beside(__file__)


def key_not_found() -> ApiError:
    return not_found("API_KEY_NOT_FOUND", "API key")


def masked(prefix: str, last4: str) -> str:
    return f"{prefix}…{last4}" if last4 else f"{prefix}…"


def row_to_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        key=masked(row["prefix"], row["last4"]),
        scopes=sc.scopes_of(row["scopes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        created_by=row["created_by"],
    )


class ApiKeyService(TenantService):
    async def create(self, body: ApiKeyCreate) -> ApiKeyCreated:
        wanted = sc.permissions_of(body.scopes)
        if not sc.within(self.org.permissions, wanted):
            raise ApiError(
                403,
                "SCOPE_EXCEEDS_CREATOR",
                "a key cannot be given more than the key that creates it holds",
                "/scopes",
            )
        if body.expires_at is not None:
            if body.expires_at.tzinfo is None:
                raise ApiError(400, "INVALID_EXPIRY", "expires_at needs a time zone", "/expires_at")
            if body.expires_at <= datetime.now(UTC):
                raise ApiError(
                    400, "INVALID_EXPIRY", "expires_at must be in the future", "/expires_at"
                )
        scopes = sorted(set(body.scopes))
        issued = tokens.issue(self.settings.security.token_key, tokens.API_TOKEN_PREFIX)
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(
                    Q.insert_key,
                    {
                        "id": new_id(),
                        "org_id": self.org.org_id,
                        "name": body.name,
                        "prefix": issued.prefix,
                        "hash": issued.hash,
                        "permissions": None if wanted is None else sorted(wanted),
                        "scopes": None if wanted is None else scopes,
                        "expires_at": body.expires_at,
                        "created_by": None
                        if self.org.actor_type == "session"
                        else self.org.token_id,
                        "created_by_user": self.org.user_id,
                        "last4": issued.token[-4:],
                    },
                )
            ).fetchone()
            assert row is not None
            shown = row_to_key(row)
            await self.audit(conn, "api_key.create", "api_key", row["id"], after=shown)
        return ApiKeyCreated(
            id=row["id"],
            name=row["name"],
            key=issued.token,
            scopes=shown.scopes,
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            created_by=row["created_by"],
        )

    async def list_page(
        self, *, limit: int, offset: int, include_revoked: bool
    ) -> tuple[list[ApiKey], int]:
        conn = await self.conn()
        params = {
            "org_id": self.org.org_id,
            "include_revoked": include_revoked,
            "limit": limit,
            "offset": offset,
        }
        rows = await (await conn.execute(Q.list_keys, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            counted = await (await conn.execute(Q.count_keys, params)).fetchone()
            total = int(counted["n"]) if counted else 0
        return [row_to_key(r) for r in rows], total

    async def get(self, key_id: uuid.UUID) -> ApiKey:
        conn = await self.conn()
        row = await (
            await conn.execute(Q.get_key, {"id": key_id, "org_id": self.org.org_id})
        ).fetchone()
        if row is None:
            raise key_not_found()
        return row_to_key(row)

    async def revoke(self, key_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            before = await (
                await conn.execute(Q.get_key, {"id": key_id, "org_id": self.org.org_id})
            ).fetchone()
            if before is None:
                raise key_not_found()
            row = await (
                await conn.execute(Q.revoke_key, {"id": key_id, "org_id": self.org.org_id})
            ).fetchone()
            if row is None:  # revoked meanwhile
                raise key_not_found()
            await self.audit(
                conn,
                "api_key.revoke",
                "api_key",
                key_id,
                before=row_to_key(before),
                after=row_to_key(row),
            )
        await revoke_cached(self.res, key_id)

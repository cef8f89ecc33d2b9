"""The operator's abuse deny-list (core/abuse.py applies it)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg

from control_plane.core import audit
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import Service

from .schemas import DenyEntry, DenyEntryCreate

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}$")
COLUMNS = "id, kind, value, reason, created_at"


def entry_not_found() -> ApiError:
    return not_found("DENYLIST_ENTRY_NOT_FOUND", "deny-list entry")


def _entry(row: dict[str, Any]) -> DenyEntry:
    return DenyEntry(**row)


class DenylistService(Service):
    async def create(self, body: DenyEntryCreate) -> DenyEntry:
        value = body.value.strip()
        conn = await self.conn()
        if body.kind == "domain":
            value = value.rstrip(".").lower()
            if not DOMAIN.match(value):
                raise ApiError(
                    400, "INVALID_DOMAIN", "a domain such as example.com (no scheme)", "/value"
                )
        else:
            try:
                async with conn.transaction():
                    await conn.execute("SELECT '' ~* %(v)s", {"v": value})
            except psycopg.errors.DataError as exc:
                raise ApiError(
                    400, "INVALID_PATTERN", f"not a valid regular expression: {exc}", "/value"
                ) from None
        async with conn.transaction():
            row = await (
                await conn.execute(
                    f"INSERT INTO abuse_denylist (id, kind, value, reason) "
                    f"VALUES (%(id)s, %(kind)s, %(value)s, %(reason)s) "
                    f"ON CONFLICT (kind, value) DO NOTHING RETURNING {COLUMNS}",
                    {"id": new_id(), "kind": body.kind, "value": value, "reason": body.reason},
                )
            ).fetchone()
            if row is None:
                raise ApiError(
                    409, "DENYLIST_ENTRY_EXISTS", "this entry is already listed", "/value"
                )
            entry = _entry(row)
            await audit.record_operator(
                conn, self.meta, "denylist.create", "denylist_entry", entry.id, after=entry
            )
        return entry

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[DenyEntry], int]:
        conn = await self.conn()
        rows = await (
            await conn.execute(
                f"SELECT {COLUMNS}, count(*) OVER () AS total FROM abuse_denylist "
                "ORDER BY kind, value LIMIT %(limit)s OFFSET %(offset)s",
                {"limit": limit, "offset": offset},
            )
        ).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        return [_entry({k: v for k, v in r.items() if k != "total"}) for r in rows], total

    async def delete(self, entry_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(
                    f"DELETE FROM abuse_denylist WHERE id = %(id)s RETURNING {COLUMNS}",
                    {"id": entry_id},
                )
            ).fetchone()
            if row is None:
                raise entry_not_found()
            await audit.record_operator(
                conn, self.meta, "denylist.delete", "denylist_entry", entry_id, before=_entry(row)
            )

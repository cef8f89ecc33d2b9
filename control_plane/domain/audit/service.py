"""The audit log: reads for the org, and the retention the worker applies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from control_plane.core.service import Service, TenantService
from control_plane.db.sql import Queries

from .schemas import AuditEntry, OperatorAuditEntry

Q = Queries.beside(__file__)


class AuditService(TenantService):
    async def page(
        self,
        *,
        limit: int,
        offset: int,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        actor_id: uuid.UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> tuple[list[AuditEntry], int]:
        params = {
            "org_id": self.org.org_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "actor_id": actor_id,
            "start": start,
            "end": end,
            "limit": limit,
            "offset": offset,
        }
        conn = await self.conn()
        rows = await (await conn.execute(Q.page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            counted = await (await conn.execute(Q.count, params)).fetchone()
            total = int(counted["n"]) if counted else 0
        items = [AuditEntry(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
        return items, total


class OperatorAuditService(Service):
    async def page(
        self,
        *,
        limit: int,
        offset: int,
        org_id: uuid.UUID | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> tuple[list[OperatorAuditEntry], int]:
        params = {
            "org_id": org_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "start": start,
            "end": end,
            "limit": limit,
            "offset": offset,
        }
        conn = await self.conn()
        rows = await (await conn.execute(Q.operator_page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            counted = await (await conn.execute(Q.operator_count, params)).fetchone()
            total = int(counted["n"]) if counted else 0
        items = [
            OperatorAuditEntry(**{k: v for k, v in row.items() if k != "total"}) for row in rows
        ]
        return items, total


async def purge(conn: AsyncConnection[Any], days: int) -> int:
    """Delete audit rows older than ``days`` (0 keeps them); the number deleted."""
    if days <= 0:
        return 0
    deleted = 0
    while True:
        cur = await conn.execute(Q.purge, {"days": days})
        deleted += cur.rowcount
        if cur.rowcount < 10000:
            return deleted

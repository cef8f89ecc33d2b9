"""Grants: which orgs may use a region, and which of them may probe private addresses from it.

A grant of a ``restricted`` region is what lets an org see it (the catalog, ``PUT
/targets/{id}/regions``, ``/targets/test``, check-now); a grant with ``allow_private_targets`` is
what lets an org's targets probed from the region point at private, loopback and link-local
addresses, and only where the region's own ``allow_private_targets`` is on. Withdrawing a grant
of a restricted region unbinds the org's targets from it in the same transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from control_plane.core.errors import ApiError, not_found
from control_plane.core.service import Service
from control_plane.db.sql import Queries

from .schemas import GrantUpdate, RegionGrant
from .service import drop_ungranted_targets, is_region_id, region_not_found

Q = Queries.beside(__file__)


def grant_not_found() -> ApiError:
    return not_found("GRANT_NOT_FOUND", "grant")


def _grant(row: dict[str, Any]) -> RegionGrant:
    return RegionGrant(
        region=row["region_id"],
        org_id=row["org_id"],
        allow_private_targets=row["allow_private_targets"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class GrantService(Service):
    """The operator's grants of one region."""

    async def _lock_region(self, region_id: str) -> dict[str, Any]:
        if not is_region_id(region_id):
            raise region_not_found()
        row = await (await (await self.conn()).execute(Q.lock_region, {"id": region_id})).fetchone()
        if row is None:
            raise region_not_found()
        return dict(row)

    async def list_page(
        self, region_id: str, *, limit: int, offset: int
    ) -> tuple[list[RegionGrant], int]:
        conn = await self.conn()
        if not is_region_id(region_id) or (
            await (await conn.execute(Q.get_region, {"id": region_id})).fetchone() is None
        ):
            raise region_not_found()
        params = {"id": region_id, "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_grants, params)).fetchall()
        total = await (await conn.execute(Q.count_grants, params)).fetchone()
        return [_grant(r) for r in rows], int(total["total"] if total else 0)

    async def put(
        self, region_id: str, org_id: uuid.UUID, data: GrantUpdate
    ) -> tuple[RegionGrant, bool]:
        """Grant (or change the grant of) the region to an org; whether it was new. An unknown
        org is a 404 ``ORG_NOT_FOUND`` (``region_grants_org_id_fkey``, core/db_errors.py)."""
        conn = await self.conn()
        async with conn.transaction():
            await self._lock_region(region_id)
            params = {
                "id": region_id,
                "org_id": org_id,
                "allow_private_targets": data.allow_private_targets,
            }
            row = await (await conn.execute(Q.upsert_grant, params)).fetchone()
        assert row is not None
        return _grant(row), bool(row["created"])

    async def delete(self, region_id: str, org_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            region = await self._lock_region(region_id)
            row = await (
                await conn.execute(Q.delete_grant, {"id": region_id, "org_id": org_id})
            ).fetchone()
            if row is None:
                raise grant_not_found()
            if region["access"] == "restricted":
                await drop_ungranted_targets(conn, region_id, org_id)

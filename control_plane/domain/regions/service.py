"""Regions: the operator-managed catalog of places agents probe from."""

from __future__ import annotations

import re
from typing import Any

from msgspec import UNSET
from psycopg import errors as pg

from control_plane.core.db_errors import translate
from control_plane.core.errors import ApiError, not_found
from control_plane.core.service import Service
from control_plane.core.text import clean_text
from control_plane.db.sql import Queries

from .schemas import Region, RegionCreate, RegionSummary, RegionUpdate

Q = Queries.beside(__file__)
_REGION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_NAME = 100
MAX_LOCATION = 200


def region_not_found() -> ApiError:
    return not_found("REGION_NOT_FOUND", "region")


def is_region_id(value: str) -> bool:
    """Whether ``value`` is shaped like a region id; nothing else can name a region."""
    return _REGION_ID.fullmatch(value) is not None


def _region_id(value: str) -> str:
    if not is_region_id(value):
        raise ApiError(
            400,
            "INVALID_REGION_ID",
            "region id must be 1 to 63 lowercase letters, digits or '-', not starting with '-'",
            "/id",
        )
    return value


def _name(value: str) -> str:
    return clean_text(value, field="/name", code="INVALID_NAME", max_len=MAX_NAME)


def _location(value: str) -> str:
    return clean_text(
        value,
        field="/location",
        code="INVALID_LOCATION",
        max_len=MAX_LOCATION,
        min_len=0,
        label="location",
    )


def _region(row: dict[str, Any]) -> Region:
    return Region(
        id=row["id"],
        name=row["name"],
        location=row["location"],
        enabled=row["enabled"],
        allow_private_targets=row["allow_private_targets"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _in_use(region_id: str, usage: dict[str, Any] | None, **extra: Any) -> ApiError:
    targets = int(usage["targets"]) if usage else 0
    agents = int(usage["agents"]) if usage else 0
    return ApiError(
        409,
        "REGION_IN_USE",
        f"region '{region_id}' is still in use ({targets} target(s), {agents} agent(s))",
        details={"targets": targets, "agents": agents, **extra},
    )


class RegionService(Service):
    """The operator's region catalog (no org: regions belong to the instance)."""

    async def create(self, data: RegionCreate) -> Region:
        conn = await self.conn()
        params = {
            "id": _region_id(data.id),
            "name": _name(data.name),
            "location": _location(data.location),
            "enabled": data.enabled,
            "allow_private_targets": data.allow_private_targets,
        }
        row = await (await conn.execute(Q.insert_region, params)).fetchone()
        if row is None:
            raise ApiError(409, "REGION_EXISTS", f"region '{data.id}' already exists", "/id")
        return _region(row)

    async def get(self, region_id: str) -> Region:
        conn = await self.conn()
        if not is_region_id(region_id):
            raise region_not_found()
        row = await (await conn.execute(Q.get_region, {"id": region_id})).fetchone()
        if row is None:
            raise region_not_found()
        return _region(row)

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Region], int]:
        conn = await self.conn()
        params = {"limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_regions, params)).fetchall()
        total = await (await conn.execute(Q.count_regions)).fetchone()
        return [_region(r) for r in rows], int(total["total"] if total else 0)

    async def list_enabled(self, *, limit: int, offset: int) -> tuple[list[RegionSummary], int]:
        conn = await self.conn()
        params = {"limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_enabled_regions, params)).fetchall()
        total = await (await conn.execute(Q.count_enabled_regions)).fetchone()
        items = [RegionSummary(id=r["id"], name=r["name"], location=r["location"]) for r in rows]
        return items, int(total["total"] if total else 0)

    async def update(self, region_id: str, data: RegionUpdate) -> Region:
        conn = await self.conn()
        if not is_region_id(region_id):
            raise region_not_found()
        async with conn.transaction():
            row = await (await conn.execute(Q.lock_region, {"id": region_id})).fetchone()
            if row is None:
                raise region_not_found()
            params = {
                "id": region_id,
                "name": row["name"] if data.name is UNSET else _name(data.name),
                "location": row["location"] if data.location is UNSET else _location(data.location),
                "enabled": row["enabled"] if data.enabled is UNSET else data.enabled,
                "allow_private_targets": row["allow_private_targets"]
                if data.allow_private_targets is UNSET
                else data.allow_private_targets,
            }
            updated = await (await conn.execute(Q.update_region, params)).fetchone()
            assert updated is not None
            return _region(updated)

    async def delete(self, region_id: str) -> None:
        conn = await self.conn()
        """Delete a region nothing references any more; else 409 ``REGION_IN_USE``."""
        if not is_region_id(region_id):
            raise region_not_found()
        try:
            async with conn.transaction():
                row = await (await conn.execute(Q.lock_region, {"id": region_id})).fetchone()
                if row is None:
                    raise region_not_found()
                usage = await (await conn.execute(Q.region_usage, {"id": region_id})).fetchone()
                if usage and (usage["targets"] or usage["agents"]):
                    raise _in_use(region_id, usage)
                await conn.execute(Q.delete_region, {"id": region_id})
        except pg.ForeignKeyViolation as exc:
            # Some other table (results, rollups, …) still points at the region: the translated
            # error, with the counts the usage query can add.
            extra = translate(exc).details or {}
            usage = await (await conn.execute(Q.region_usage, {"id": region_id})).fetchone()
            raise _in_use(region_id, usage, **extra) from None
